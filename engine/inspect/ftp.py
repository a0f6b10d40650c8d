"""FTP commands a client sends: the address of each PORT command (active mode).

What Suricata's `ftpbounce` tests: a PORT command naming another host than the
client's own is an FTP bounce. Replies and the data connections are not parsed.
"""

from __future__ import annotations

MAX_LINE = 4096

#: The key under which a PORT command's IPv4 address (4 bytes) is handed over.
PORT_ADDRESS = "ftp.port_address"


class FtpError(ValueError):
    """A command line longer than any FTP client sends."""


def port_address(argument: bytes) -> bytes | None:
    """The IPv4 address of a PORT argument `h1,h2,h3,h4,p1,p2`, or None when it is
    not one."""
    parts = argument.strip().split(b",")
    if len(parts) != 6 or not all(p.strip().isdigit() for p in parts):
        return None
    numbers = [int(p) for p in parts]
    if any(n > 255 for n in numbers):
        return None
    return bytes(numbers[:4])


class FtpClient:
    """Incremental parser of the client side of an FTP control connection."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = bytearray()

    @property
    def held(self) -> int:
        return len(self.buf)

    def feed(self, new: bytes) -> list[dict[str, bytes]]:
        """Parse `new`; return one buffer set per PORT command it completes."""
        out: list[dict[str, bytes]] = []
        buf = self.buf
        buf += new
        pos = 0
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > MAX_LINE:
                    raise FtpError("FTP command line too long")
                break
            line = bytes(buf[pos:nl]).rstrip(b"\r")
            pos = nl + 1
            if line[:5].upper() == b"PORT ":
                address = port_address(line[5:])
                if address is not None:
                    out.append({PORT_ADDRESS: address})
        del buf[:pos]
        return out
