"""Octavia's list semantics: filters, ``fields=``, sorting and ``limit``/``marker`` pages.

Follows ``octavia/api/common/pagination.py``: any response field is a filter (exact match,
compared as text), ``tags``/``tags-any``/``not-tags``/``not-tags-any`` match tag lists, an
unknown or repeated key is 400 "One or more arguments are either duplicate or invalid";
``sort=k1:dir,k2`` or ``sort_key``/``sort_dir`` then ``created_at``, ``id`` ascending;
``limit`` below 1 means no limit, at most 1000 a page; a page gets ``rel: next`` when it is
full and ``rel: previous`` (``page_reverse=True``) when it started at a marker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lbsim.server.octavia.errors import Fault

AUXILIARY = frozenset({"limit", "marker", "sort", "sort_key", "sort_dir", "fields", "page_reverse"})
TAG_FILTERS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
MAX_LIMIT = 1000


def _invalid_filter() -> Fault:
    return Fault(400, "One or more arguments are either duplicate or invalid")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def parse_fields(query: Sequence[tuple[str, str]]) -> list[str]:
    """The ``fields`` the client asked for (repeated or comma-separated)."""
    out: list[str] = []
    for k, v in query:
        if k == "fields":
            out.extend(f for f in v.split(",") if f)
    return out


def select_fields(obj: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Keep only ``fields`` (all of them when none were asked for)."""
    if not fields:
        return obj
    return {k: v for k, v in obj.items() if k in fields}


def paginate(
    items: list[dict[str, Any]],
    query: Sequence[tuple[str, str]],
    path_url: str,
    *,
    extra_filters: Mapping[str, str] | None = None,
    sortable: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Filter, sort and page ``items`` (response dicts in creation order).

    ``extra_filters`` maps filter keys that are not response fields to the field holding
    them (``loadbalancer_id`` on a listener is ``loadbalancers[0].id``). Returns the page
    and its links."""
    params: dict[str, str] = {}
    filters: dict[str, list[str]] = {}
    for k, v in query:
        if k == "fields":
            continue
        if k in TAG_FILTERS:
            filters.setdefault(k, []).extend(t for t in v.split(",") if t)
            continue
        if k in params or k in filters:
            raise _invalid_filter()
        if k in AUXILIARY:
            params[k] = v
        else:
            filters[k] = [v]
    known = set(items[0]) if items else set(sortable or ())
    extra = dict(extra_filters or {})
    for k in filters:
        if k not in TAG_FILTERS and k not in known and k not in extra and not (sortable and k in sortable):
            raise _invalid_filter()
    limit = _parse_limit(params.get("limit"))
    sort_keys = _parse_sort(params)
    for key, _ in sort_keys:
        if (items and key not in items[0]) or (not items and sortable is not None and key not in sortable):
            raise Fault(400, f"Supplied sort key '{key}' is not valid.")
    # Octavia then sorts by created_at and id; records come in creation order, so a stable
    # sort keeps that order for ties (also between objects created at the same instant)
    ordered = list(items)
    for key, direction in reversed(sort_keys):
        ordered.sort(key=_by(key), reverse=direction == "desc")
    marker = params.get("marker")
    reverse = params.get("page_reverse", "False") == "True"
    if marker is not None:
        pos = next((i for i, o in enumerate(ordered) if o["id"] == marker), None)
        if pos is None:
            raise Fault(400, f"Supplied pagination marker '{marker}' is not valid.")
        ordered = ordered[:pos] if reverse else ordered[pos + 1 :]
    selected = [o for o in ordered if _matches(o, filters, extra)]
    if limit is not None:
        selected = selected[-limit:] if reverse and marker is not None else selected[:limit]
    return selected, _links(selected, params, limit, path_url)


def _by(key: str) -> Callable[[dict[str, Any]], tuple[int, Any]]:
    return lambda o: _sort_value(o.get(key))


def _matches(obj: dict[str, Any], filters: Mapping[str, list[str]], extra: Mapping[str, str]) -> bool:
    tags = set(obj.get("tags") or [])
    for k, values in filters.items():
        if k == "tags" and not set(values) <= tags:
            return False
        if k == "tags-any" and not set(values) & tags:
            return False
        if k == "not-tags" and values and set(values) <= tags:
            return False
        if k == "not-tags-any" and set(values) & tags:
            return False
        if k in TAG_FILTERS:
            continue
        field = extra.get(k, k)
        value = obj.get(field)
        if isinstance(value, list):  # id lists: loadbalancers, pools, listeners
            texts = {_text(v.get("id")) if isinstance(v, dict) else _text(v) for v in value}
            if values[0] not in texts:
                return False
        elif _text(value).lower() != values[0].lower() if isinstance(value, bool) else _text(value) != values[0]:
            return False
    return True


def _parse_limit(raw: str | None) -> int | None:
    if raw is None:
        return MAX_LIMIT
    if raw == "infinite":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise Fault(400, f"Supplied pagination limit '{raw}' is not valid.") from None
    return None if value < 1 else min(value, MAX_LIMIT)


def _parse_sort(params: Mapping[str, str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if params.get("sort"):
        for part in params["sort"].split(","):
            comps = part.split(":")
            if len(comps) == 1:
                out.append((comps[0], "asc"))
            elif len(comps) == 2:
                out.append((comps[0], _direction(comps[1])))
            else:
                raise Fault(400, f"Supplied sort key '{comps}' is not valid.")
    elif params.get("sort_key"):
        keys = params["sort_key"].split(",")
        dirs = params.get("sort_dir", "").split(",") if params.get("sort_dir") else []
        dirs += ["asc"] * (len(keys) - len(dirs))
        out = [(k, _direction(dd)) for k, dd in zip(keys, dirs, strict=False)]
    return out


def _direction(raw: str) -> str:
    value = raw.lower()
    if value not in ("asc", "desc"):
        raise Fault(400, f"Supplied sort direction '{value}' is not valid.")
    return value


def _links(page: list[dict[str, Any]], params: Mapping[str, str], limit: int | None, url: str) -> list[dict[str, str]]:
    links: list[dict[str, str]] = []
    if not page:
        return links
    base = [f"limit={limit}"]
    if params.get("sort"):
        base.append(f"sort={params['sort']}")
    if params.get("sort_key"):
        base.append(f"sort_key={params['sort_key']}")
    if params.get("marker"):
        prev = [*base, f"marker={page[0]['id']}", "page_reverse=True"]
        links.append({"href": f"{url}?{'&'.join(prev)}", "rel": "previous"})
    if limit is None or len(page) >= limit:
        links.append({"href": f"{url}?{'&'.join([*base, 'marker=' + str(page[-1]['id'])])}", "rel": "next"})
    return links
