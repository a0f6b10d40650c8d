"""The sinks' typed errors; each names where it happened (a URL, a file and line, a setting)."""

from __future__ import annotations


class SinkError(Exception):
    """A sink cannot start, write or finish. `where` locates it (URL, path or path:line)."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class ElasticsearchSinkError(SinkError):
    """Elasticsearch refused or could not be reached; `where` is the (credential-free) URL."""


class TemplateConflictError(ElasticsearchSinkError):
    """An existing template, policy or data stream that Shrike's would clash with."""


class DeadLetterError(SinkError):
    """A dead-letter file that cannot be written, or a line in one that cannot be read."""


class VerdictStoreError(SinkError):
    """The embedded store cannot take or return verdicts; `where` is the database file."""


class KibanaError(SinkError):
    """Kibana refused the saved objects or could not be reached."""
