"""SMTP commands a client sends: the HELO/EHLO, MAIL FROM and RCPT TO arguments.

Message content after DATA (up to the lone dot) and BDAT chunks are skipped;
after STARTTLS the session is encrypted and parsing ends.
"""

from __future__ import annotations

MAX_LINE = 4096


class SmtpError(ValueError):
    """A command line longer than any SMTP client sends."""


def _argument(line: bytes, prefix_len: int) -> bytes:
    value = line[prefix_len:].strip()
    if value.startswith(b"<"):
        end = value.find(b">")
        return value[: end + 1] if end > 0 else value
    return value.split(b" ", 1)[0]


class SmtpClient:
    """Incremental parser of the client side of an SMTP session."""

    __slots__ = ("buf", "chunk", "data", "done", "midline")

    def __init__(self) -> None:
        self.buf = bytearray()
        self.data = False  # inside message content after DATA
        self.chunk = 0  # BDAT bytes still to skip
        self.done = False
        self.midline = False  # the start of the current content line was dropped

    @property
    def held(self) -> int:
        return len(self.buf)

    def feed(self, new: bytes) -> list[dict[str, bytes]]:
        """Parse `new`; return one buffer set per command of interest it completes."""
        out: list[dict[str, bytes]] = []
        if self.done:
            return out
        buf = self.buf
        buf += new
        pos = 0
        while pos < len(buf):
            if self.chunk:
                take = min(self.chunk, len(buf) - pos)
                self.chunk -= take
                pos += take
                continue
            nl = buf.find(b"\n", pos)
            if nl < 0:
                if len(buf) - pos > MAX_LINE and not self.data:
                    raise SmtpError("SMTP command line too long")
                if self.data and len(buf) - pos > 2:
                    # a content line too long to be the lone dot: drop what there is
                    pos = len(buf)
                    self.midline = True
                break
            line = bytes(buf[pos:nl]).rstrip(b"\r")
            pos = nl + 1
            if self.data:
                if line == b"." and not self.midline:
                    self.data = False
                self.midline = False
                continue
            upper = line[:10].upper()
            if upper.startswith((b"HELO ", b"EHLO ")):
                out.append({"smtp.helo": line[5:].strip()})
            elif upper.startswith(b"MAIL FROM:"):
                out.append({"smtp.mail_from": _argument(line, 10)})
            elif upper.startswith(b"RCPT TO:"):
                out.append({"smtp.rcpt_to": _argument(line, 8)})
            elif upper == b"DATA":
                self.data = True
            elif upper.startswith(b"BDAT "):
                size = line[5:].split(b" ", 1)[0]
                self.chunk = int(size) if size.isdigit() else 0
            elif upper == b"STARTTLS":
                self.done = True
                break
        del buf[:pos]
        if self.done:
            self.buf = bytearray()
        return out
