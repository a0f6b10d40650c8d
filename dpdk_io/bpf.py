"""Compiling tcpdump-style filter expressions to classic BPF through libpcap and attaching them to sockets."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import socket
import struct
from dataclasses import dataclass

from dpdk_io.batch import LinkType
from dpdk_io.errors import CaptureError, SourceUnavailableError

# libpcap's link-type names for `pcap_datalink_name_to_val`; going through the
# name rather than a number matters because DLT_RAW differs between platforms
# (12 on Linux, 14 on OpenBSD) while LinkType holds the pcap-file values.
_DLT_NAMES: dict[LinkType, bytes] = {
    LinkType.NULL: b"NULL",
    LinkType.ETHERNET: b"EN10MB",
    LinkType.RAW: b"RAW",
    LinkType.LOOP: b"LOOP",
    LinkType.LINUX_SLL: b"LINUX_SLL",
    LinkType.IPV4: b"IPV4",
    LinkType.IPV6: b"IPV6",
    LinkType.LINUX_SLL2: b"LINUX_SLL2",
}

# The kernel refuses classic BPF programs longer than this (BPF_MAXINSNS).
KERNEL_MAX_INSTRUCTIONS = 4096
# libpcap's own ceiling on a snapshot length (MAXIMUM_SNAPLEN).
MAX_SNAPLEN = 262144

_PCAP_NETMASK_UNKNOWN = 0xFFFFFFFF
_SO_ATTACH_FILTER = 26
_SO_DETACH_FILTER = 27
_INSN = struct.Struct("=HBBI")  # struct sock_filter / struct bpf_insn, 8 bytes


class BpfFilterError(CaptureError, ValueError):
    """A filter expression libpcap cannot compile, or a program the kernel will not take."""

    def __init__(self, expression: str, message: str) -> None:
        self.expression = expression
        self.reason = message
        super().__init__(f"bad capture filter {expression!r}: {message}")


@dataclass(frozen=True, slots=True)
class BpfInstruction:
    """One classic BPF instruction (`struct bpf_insn`)."""

    code: int
    jt: int
    jf: int
    k: int


@dataclass(frozen=True, slots=True)
class BpfProgram:
    """A compiled filter: the expression it came from, the link type and snaplen it was compiled for, and its bytecode.

    An accepted packet is truncated to `snaplen` bytes by the program's return
    value, which is how the kernel applies the snapshot length to a socket.
    """

    expression: str
    linktype: LinkType
    snaplen: int
    instructions: tuple[BpfInstruction, ...]

    def __len__(self) -> int:
        return len(self.instructions)

    def pack(self) -> bytes:
        """The program as an array of `struct sock_filter`, the layout SO_ATTACH_FILTER wants."""
        return b"".join(_INSN.pack(i.code, i.jt, i.jf, i.k) for i in self.instructions)

    def run(self, packet: bytes, wirelen: int | None = None) -> int:
        """Run this bytecode on one packet with libpcap's interpreter.

        Returns how many bytes the filter keeps: 0 means rejected. `wirelen`
        is the original length when `packet` is a truncated capture.
        """
        lib = load_libpcap()
        program = _instruction_array(self)
        buf = ctypes.create_string_buffer(packet, len(packet))
        length = len(packet) if wirelen is None else wirelen
        return int(lib.bpf_filter(program, buf, length, len(packet)))

    def matches(self, packet: bytes) -> bool:
        """Whether the filter accepts this packet."""
        return self.run(packet) > 0


class _BpfInsnC(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint32),
    )


class _BpfProgramC(ctypes.Structure):
    _fields_ = (("bf_len", ctypes.c_uint), ("bf_insns", ctypes.POINTER(_BpfInsnC)))


class _SockFprogC(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


def _instruction_array(program: BpfProgram) -> ctypes.Array[_BpfInsnC]:
    array_type = _BpfInsnC * len(program.instructions)
    return array_type(*(_BpfInsnC(i.code, i.jt, i.jf, i.k) for i in program.instructions))


@functools.cache
def load_libpcap() -> ctypes.CDLL:
    """Load libpcap once and declare the few functions Shrike calls."""
    name = ctypes.util.find_library("pcap")
    if name is None:
        raise SourceUnavailableError(
            "libpcap was not found; capture filters need it: install it with "
            "`apt-get install libpcap0.8` (Debian/Ubuntu) or `dnf install libpcap` (Fedora)"
        )
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise SourceUnavailableError(f"libpcap ({name}) could not be loaded: {exc}") from exc
    lib.pcap_open_dead.argtypes = (ctypes.c_int, ctypes.c_int)
    lib.pcap_open_dead.restype = ctypes.c_void_p
    lib.pcap_close.argtypes = (ctypes.c_void_p,)
    lib.pcap_close.restype = None
    lib.pcap_compile.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(_BpfProgramC),
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_uint32,
    )
    lib.pcap_compile.restype = ctypes.c_int
    lib.pcap_geterr.argtypes = (ctypes.c_void_p,)
    lib.pcap_geterr.restype = ctypes.c_char_p
    lib.pcap_freecode.argtypes = (ctypes.POINTER(_BpfProgramC),)
    lib.pcap_freecode.restype = None
    lib.pcap_datalink_name_to_val.argtypes = (ctypes.c_char_p,)
    lib.pcap_datalink_name_to_val.restype = ctypes.c_int
    lib.bpf_filter.argtypes = (
        ctypes.POINTER(_BpfInsnC),
        ctypes.c_char_p,
        ctypes.c_uint,
        ctypes.c_uint,
    )
    lib.bpf_filter.restype = ctypes.c_uint
    return lib


def compile_filter(
    expression: str,
    linktype: LinkType | int = LinkType.ETHERNET,
    *,
    snaplen: int = 65535,
    optimize: bool = True,
) -> BpfProgram:
    """Compile a pcap-filter(7) expression for packets of `linktype`.

    An empty expression compiles to a program that accepts everything (and
    still truncates to `snaplen`). Raises BpfFilterError quoting libpcap's
    message when the expression is wrong.
    """
    if not isinstance(expression, str):
        raise TypeError(f"filter expression must be a str, not {type(expression).__name__}")
    if "\x00" in expression:
        raise BpfFilterError(expression, "the expression contains a NUL character")
    try:
        encoded = expression.encode("ascii")
    except UnicodeEncodeError as exc:
        raise BpfFilterError(
            expression, f"non-ASCII character {expression[exc.start]!r} at column {exc.start + 1}"
        ) from None
    if not 1 <= snaplen <= MAX_SNAPLEN:
        raise ValueError(f"snaplen must be between 1 and {MAX_SNAPLEN}, got {snaplen}")
    try:
        link = LinkType(linktype)
    except ValueError:
        raise BpfFilterError(expression, f"unknown link type {linktype}") from None

    lib = load_libpcap()
    dlt = lib.pcap_datalink_name_to_val(_DLT_NAMES[link])
    if dlt < 0:
        raise SourceUnavailableError(f"this libpcap does not know link type {link.name}")
    handle = lib.pcap_open_dead(dlt, snaplen)
    if not handle:
        raise SourceUnavailableError("pcap_open_dead failed (out of memory?)")
    try:
        compiled = _BpfProgramC()
        status = lib.pcap_compile(
            handle, ctypes.byref(compiled), encoded, int(optimize), _PCAP_NETMASK_UNKNOWN
        )
        if status != 0:
            message = (lib.pcap_geterr(handle) or b"unknown libpcap error").decode(
                "utf-8", "replace"
            )
            raise BpfFilterError(expression, message)
        try:
            instructions = tuple(
                BpfInstruction(
                    int(compiled.bf_insns[i].code),
                    int(compiled.bf_insns[i].jt),
                    int(compiled.bf_insns[i].jf),
                    int(compiled.bf_insns[i].k),
                )
                for i in range(compiled.bf_len)
            )
        finally:
            lib.pcap_freecode(ctypes.byref(compiled))
    finally:
        lib.pcap_close(handle)
    return BpfProgram(
        expression=expression, linktype=link, snaplen=snaplen, instructions=instructions
    )


def attach_filter(sock: socket.socket, program: BpfProgram) -> None:
    """Attach `program` to `sock` with SO_ATTACH_FILTER so the kernel drops rejected packets before copying them."""
    count = len(program.instructions)
    if not 1 <= count <= KERNEL_MAX_INSTRUCTIONS:
        raise BpfFilterError(
            program.expression,
            f"compiles to {count} instructions; the kernel accepts 1 to {KERNEL_MAX_INSTRUCTIONS}",
        )
    # The kernel copies the instructions during setsockopt, so the buffer only
    # has to outlive this call.
    code = ctypes.create_string_buffer(program.pack())
    fprog = _SockFprogC(count, ctypes.addressof(code))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(fprog))
    except OSError as exc:
        raise BpfFilterError(
            program.expression, f"the kernel rejected the compiled program: {exc.strerror}"
        ) from exc


def detach_filter(sock: socket.socket) -> None:
    """Remove the filter attached to `sock`, if any."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_DETACH_FILTER, 0)
    except OSError as exc:
        if exc.errno != 2:  # ENOENT: nothing was attached
            raise
