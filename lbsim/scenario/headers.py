"""Listener ``insert_headers``: the headers HAProxy adds to requests sent to the members.

Octavia 19 (``api/v2/controllers/listener.py`` ``_validate_insert_headers``, octavia-lib
``SUPPORTED_HTTP_HEADERS`` / ``SUPPORTED_SSL_HEADERS``): only HTTP and TERMINATED_HTTPS
listeners take them; the names must be known; the X-SSL-* ones need TERMINATED_HTTPS.
Values are strings, ``"true"`` (any case) switching a header on. Refusals are
``InvalidOption``: "<value> is not a valid option for <option>".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

PathT = tuple[str | int, ...]
Found = tuple[PathT, str]

HTTP_HEADERS = ("X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto")
SSL_HEADERS = (
    "X-SSL-Client-Verify",
    "X-SSL-Client-Has-Cert",
    "X-SSL-Client-DN",
    "X-SSL-Client-CN",
    "X-SSL-Issuer",
    "X-SSL-Client-SHA1",
    "X-SSL-Client-Not-Before",
    "X-SSL-Client-Not-After",
)


def insert_headers_problem(protocol: str, headers: Mapping[str, Any]) -> str | None:
    """Octavia's message for a listener's ``insert_headers``, or None."""
    if not headers:
        return None
    names = list(headers)
    if protocol not in ("HTTP", "TERMINATED_HTTPS"):
        return f"insert-headers is not a valid option for a {protocol} protocol listener."
    unknown = set(names) - set(HTTP_HEADERS) - set(SSL_HEADERS)
    if unknown:
        return f"{names} is not a valid option for insert_headers"
    if protocol != "TERMINATED_HTTPS":
        ssl = [h for h in names if h in SSL_HEADERS]
        if ssl:
            return f"{ssl} is not a valid option for {protocol} protocol listener."
    return None


def check_insert_headers(listeners: Sequence[Any], lpath: PathT) -> Iterator[Found]:
    """Each listener's ``insert_headers``, with the field path."""
    for i, li in enumerate(listeners):
        problem = insert_headers_problem(li.protocol, getattr(li, "insert_headers", None) or {})
        if problem is not None:
            yield (*lpath, "listeners", i, "insert_headers"), problem


def _on(headers: Mapping[str, Any], name: str) -> bool:
    return str(headers.get(name, "False")).lower() == "true"


def backend_header_lines(listener_protocol: str, pool_protocol: str, headers: Mapping[str, Any]) -> list[str]:
    """The lines ``backend_macro`` renders for ``insert_headers`` (Octavia 19 order)."""
    out: list[str] = []
    if pool_protocol == "HTTP":
        if _on(headers, "X-Forwarded-For"):
            out.append("    option forwardfor")
        if _on(headers, "X-Forwarded-Port"):
            out.append("    http-request set-header X-Forwarded-Port %[dst_port]")
    if _on(headers, "X-Forwarded-Proto"):
        if listener_protocol == "HTTP":
            out.append("    http-request set-header X-Forwarded-Proto http")
        elif listener_protocol == "TERMINATED_HTTPS":
            out.append("    http-request set-header X-Forwarded-Proto https")
    if listener_protocol == "TERMINATED_HTTPS":
        fetches = {
            "X-SSL-Client-Verify": "%[ssl_c_verify]",
            "X-SSL-Client-Has-Cert": "%[ssl_c_used]",
            "X-SSL-Client-DN": "%{+Q}[ssl_c_s_dn]",
            "X-SSL-Client-CN": "%{+Q}[ssl_c_s_dn(cn)]",
            "X-SSL-Issuer": "%{+Q}[ssl_c_i_dn]",
            "X-SSL-Client-SHA1": "%{+Q}[ssl_c_sha1,hex]",
            "X-SSL-Client-Not-Before": "%{+Q}[ssl_c_notbefore]",
            "X-SSL-Client-Not-After": "%{+Q}[ssl_c_notafter]",
        }
        for name in SSL_HEADERS:
            if _on(headers, name):
                out.append(f"    http-request set-header {name} {fetches[name]}")
    return out
