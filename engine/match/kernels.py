"""The numba kernels of the matcher's per-flow session state and its prefilter.

They live apart from the modules that call them so that those modules hold plain
Python only.
"""

from __future__ import annotations

import numba
import numpy as np

# Codes of one- and two-byte literals in `confirm_kernel`'s table of what a payload
# holds: two bytes as they are, two bytes lowercased (nocase), one byte, one byte
# lowercased.
SHORT_PAIR = 0
SHORT_PAIR_FOLDED = 1 << 16
SHORT_BYTE = 2 << 16
SHORT_BYTE_FOLDED = (2 << 16) + 256
SHORT_CODES = (2 << 16) + 512

# session bits per flow slot
_S_SYN = 1
_S_SYNACK = 2
_S_EST = 4
_S_ORIG = 8
_S_RESP = 16
_S_MIDSTREAM = 32
_S_SWAP = 64  # the flow's first packet was a SYN-ACK from the initiator: swap directions
_S_PICKUP = 128  # the flow's first packet was a SYN-ACK


@numba.njit(cache=True)
def session_kernel(
    row_flow,
    row_dir,
    row_new,
    proto,
    tcp_flags,
    midstream,
    async_oneside,
    state,
    gen,
    out_est,
    out_gen,
    out_dir,
):
    """Per row: whether its flow is established (after this packet), the slot's
    generation, and the packet's direction (0 from the client, 1 from the server).

    The direction is the flow table's, except for a TCP flow whose first packet is a
    SYN-ACK: its sender is the server. TCP is established once the three-way
    handshake completes (the initiator's ACK after a SYN-ACK), or, for a flow picked
    up mid-stream when `midstream` allows it (Snort's default; Suricata's
    stream.midstream), once both sides have sent, or at the server's ACK when the
    flow was picked up at its SYN-ACK; other protocols once both sides have sent. With `async_oneside` (Suricata's stream.async-oneside) a session of
    which only one side is seen becomes established too: on the client's ACK after
    its SYN, on the server's ACK after its SYN-ACK, and at once when picked up
    mid-stream.
    """
    for i in range(row_flow.shape[0]):
        s = row_flow[i]
        if s < 0:
            out_est[i] = 0
            out_gen[i] = 0
            out_dir[i] = row_dir[i]
            continue
        f = tcp_flags[i]
        syn = (f & 0x02) != 0
        ack = (f & 0x10) != 0
        tcp = proto[i] == 6
        if row_new[i]:
            gen[s] += 1
            state[s] = 0
            if tcp and syn and ack:
                state[s] = _S_PICKUP | (_S_SWAP if row_dir[i] == 0 else 0)
        st = state[s]
        d = row_dir[i]
        if (st & _S_SWAP) != 0:
            d = 1 - d
        st |= _S_ORIG if d == 0 else _S_RESP
        if tcp:
            if row_new[i] and not syn:
                st |= _S_MIDSTREAM
            if syn and not ack and d == 0:
                st |= _S_SYN
            elif syn and ack and d == 1:
                st |= _S_SYNACK
            elif ack and not syn:
                handshake = d == 0 and (st & _S_SYNACK) != 0
                server_side = d == 1 and (st & _S_SYNACK) != 0
                one_side = (d == 0 and (st & _S_SYN) != 0) or server_side
                # picked up at its SYN-ACK: the server's ACK completes the pickup
                pickup = midstream and (st & _S_PICKUP) != 0 and server_side
                if handshake or pickup or (async_oneside and one_side):
                    st |= _S_EST
            both = (st & _S_ORIG) != 0 and (st & _S_RESP) != 0
            if midstream and (st & _S_MIDSTREAM) != 0 and (async_oneside or both):
                st |= _S_EST
        elif (st & _S_ORIG) != 0 and (st & _S_RESP) != 0:
            st |= _S_EST
        state[s] = st
        out_est[i] = 1 if (st & _S_EST) != 0 else 0
        out_gen[i] = gen[s]
        out_dir[i] = d


@numba.njit(cache=True)
def run_kernel(arr, cstart, lens, run_byte, run_nocase, run_len, fold, interesting, out):
    """out[k, j] = True when segment j holds run_len[k] copies of run_byte[k] in a row
    (compared through `fold`, ASCII case folding, when run_nocase[k]). One pass."""
    n_runs = run_byte.shape[0]
    shortest = run_len.min() if n_runs else 0
    step = max(shortest, 1)
    for j in range(cstart.shape[0]):
        begin = cstart[j]
        end = begin + lens[j]
        i = begin
        # Any run of `shortest` bytes or more covers one of the bytes visited: after
        # a byte no run is made of, `step` bytes on; after a run, the byte past it.
        while i < end:
            b = arr[i]
            if not interesting[b]:
                i += step
                continue
            e0 = i
            while e0 > begin and arr[e0 - 1] == b:
                e0 -= 1
            e1 = i + 1
            while e1 < end and arr[e1] == b:
                e1 += 1
            fb = fold[b]
            f0 = e0
            while f0 > begin and fold[arr[f0 - 1]] == fb:
                f0 -= 1
            f1 = e1
            while f1 < end and fold[arr[f1]] == fb:
                f1 += 1
            i = e1
            exact = e1 - e0
            folded = f1 - f0
            if folded < shortest:  # most occurrences: too short for any run
                continue
            for k in range(n_runs):
                if run_nocase[k]:
                    if fold[run_byte[k]] == fb and folded >= run_len[k]:
                        out[k, j] = True
                elif run_byte[k] == b and exact >= run_len[k]:
                    out[k, j] = True


@numba.njit(cache=True)
def gather_kernel(data, starts, lens, cstart, out):
    """out[cstart[j] : cstart[j] + lens[j]] = data[starts[j] : starts[j] + lens[j]]."""
    for j in range(starts.shape[0]):
        s = starts[j]
        o = cstart[j]
        n = lens[j]
        out[o : o + n] = data[s : s + n]  # a slice copy: a third of a byte loop's time


@numba.njit(cache=True)
def pair_kernel(sel, seg, pid, offsets, flat, last):
    """(row, rule) pairs from pattern hits: segment `seg[i]` (row `sel[seg[i]]`) holds
    pattern `pid[i]`, whose rules are `flat[offsets[p] : offsets[p + 1]]`.

    A hit repeating its pattern's last segment adds nothing: a scan reports hits in
    the order they end, so a pattern's hits in one segment come before the next
    segment's (`last[p]`, -1 at first, is the segment of pattern p's last hit). Any
    repeat this misses is only a duplicate pair.
    """
    total = 0
    keep = np.zeros(seg.shape[0], dtype=np.bool_)
    for i in range(seg.shape[0]):
        p = pid[i]
        if last[p] != seg[i]:
            last[p] = seg[i]
            keep[i] = True
            total += offsets[p + 1] - offsets[p]
    rows = np.empty(total, dtype=np.int64)
    rules = np.empty(total, dtype=np.int64)
    at = 0
    for i in range(seg.shape[0]):
        if keep[i]:
            p = pid[i]
            row = sel[seg[i]]
            for j in range(offsets[p], offsets[p + 1]):
                rows[at] = row
                rules[at] = flat[j]
                at += 1
    return rows, rules


@numba.njit(cache=True)
def confirm_kernel(
    cand_seg,
    cand_rule,
    hit_seg,
    hit_lit,
    offsets,
    flat,
    stamp,
    arr,
    cstart,
    lens,
    short_offsets,
    short_flat,
    short_folded,
    fold,
    short_stamp,
):
    """Per candidate (sorted by segment), whether its segment holds every literal its
    rule needs: the long ones (`flat[offsets[k] : offsets[k + 1]]`) among the hits,
    sorted by segment, and the short ones (`short_flat[...]`, codes laid out as
    `SHORT_*` above) among the segment's bytes and byte pairs. `stamp[lit]` and
    `short_stamp[code]` hold the last segment seen with each (-1 at first), so
    nothing is cleared between segments."""
    n = cand_seg.shape[0]
    keep = np.ones(n, dtype=np.bool_)
    h = 0
    i = 0
    while i < n:
        s = cand_seg[i]
        end = i
        shorts = False
        folded = False
        while end < n and cand_seg[end] == s:
            k = cand_rule[end]
            if short_offsets[k + 1] > short_offsets[k]:
                shorts = True
                if short_folded[k]:
                    folded = True
            end += 1
        while h < hit_seg.shape[0] and hit_seg[h] < s:
            h += 1
        while h < hit_seg.shape[0] and hit_seg[h] == s:
            stamp[hit_lit[h]] = s
            h += 1
        if shorts:
            lo = cstart[s]
            hi = lo + lens[s]
            for j in range(lo, hi):
                b = arr[j]
                short_stamp[SHORT_BYTE + b] = s
                if j + 1 < hi:
                    short_stamp[SHORT_PAIR + ((b << 8) | arr[j + 1])] = s
                if folded:
                    f = fold[b]
                    short_stamp[SHORT_BYTE_FOLDED + f] = s
                    if j + 1 < hi:
                        short_stamp[SHORT_PAIR_FOLDED + ((f << 8) | fold[arr[j + 1]])] = s
        for c in range(i, end):
            k = cand_rule[c]
            for j in range(offsets[k], offsets[k + 1]):
                if stamp[flat[j]] != s:
                    keep[c] = False
                    break
            if keep[c]:
                for j in range(short_offsets[k], short_offsets[k + 1]):
                    if short_stamp[short_flat[j]] != s:
                        keep[c] = False
                        break
        i = end
    return keep


@numba.njit(cache=True)
def header_kernel(
    crow,
    crule,
    rows,
    row_dir,
    est,
    proto_ok,
    sport_set,
    dport_set,
    bidir,
    replies,
    direction,
    established,
    frag,
    any_proto,
    port_sets,
    fragment_flag,
    later_fragment_flag,
    out,
):
    """Whether each (row, rule) candidate meets its rule's header: protocol, ports
    (either way round for `<>`, the other way round on to-client packets for `=>`),
    flow direction, established state and fragment tests. `rows` are the decoded
    rows (a structured array, whole: its fields' views would make a compiled variant
    per layout)."""
    for i in range(crow.shape[0]):
        r = crow[i]
        k = crule[i]
        out[i] = False
        row = rows[r]
        if not proto_ok[k, row.proto]:
            continue
        to_client = row_dir[r] == 1
        sp = row.sport
        dp = row.dport
        ss = sport_set[k]
        ds = dport_set[k]
        forward = port_sets[ss, sp] and port_sets[ds, dp]
        backward = port_sets[ss, dp] and port_sets[ds, sp]
        if replies[k]:
            if not (backward if to_client else forward):
                continue
        elif not (forward or (bidir[k] and backward)):
            continue
        d = direction[k]
        if d >= 0 and (d == 1) != to_client:
            continue
        e = established[k]
        if e >= 0 and (e == 1) != (est[r] == 1):
            continue
        fl = row.flags
        f = frag[k]
        if f >= 0 and (f == 1) != ((fl & fragment_flag) != 0):
            continue
        if (fl & later_fragment_flag) != 0 and not any_proto[k]:
            continue  # a fragment without its transport header: rules on any IP protocol
        out[i] = True


_SHARD_K1 = np.uint64(0x9E3779B97F4A7C15)
_SHARD_K2 = np.uint64(0xBF58476D1CE4E5B9)
_SHARD_K3 = np.uint64(0x94D049BB133111EB)


@numba.njit(cache=True)
def shard_kernel(rows, workers, out):
    """Per decoded row, the worker its flow goes to: a hash of its two addresses, its
    ports (TCP, UDP and SCTP only) and its protocol that both directions share."""
    m = np.uint64(workers)
    for i in range(rows.shape[0]):
        row = rows[i]
        src = row["src"]
        dst = row["dst"]
        ends = ((src[0] * _SHARD_K1) ^ src[1]) + ((dst[0] * _SHARD_K1) ^ dst[1])
        proto = np.uint64(row["proto"])
        ports = np.uint64(0)
        if proto == 6 or proto == 17 or proto == 132:
            ports = np.uint64(row["sport"]) + np.uint64(row["dport"])
        h = ends ^ (ports * _SHARD_K2) ^ proto
        h ^= h >> np.uint64(31)
        h *= _SHARD_K3
        h ^= h >> np.uint64(29)
        out[i] = h % m
