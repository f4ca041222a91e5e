"""A thin KMock (pinned 0.8) subclass that behaves enough like a kube-apiserver for kopf and the
operator (see docs/design/kmock.md for the gaps it fixes):

- create: uid, creationTimestamp, generation, namespace, resourceVersion; answers 201; 409 on
  duplicates;
- every change: a rising resourceVersion; generation bumps when spec changes;
- `/status` writes only status; the main endpoint ignores status;
- a failing JSON-patch `test` (kopf's optimistic locking) answers 422, not 500;
- deletion: finalizers honoured, then owner-reference garbage collection (cascading);
- list: a real resourceVersion and equality label selectors; watch subscribes before its
  snapshot (no lost events) and honours `?resourceVersion`;
- server-side apply (`application/apply-patch+yaml`): creates or updates, with per-manager field
  ownership (tests/kmock_apply.py); every other PATCH is a merge or JSON patch.

It leans on KMock internals (`_objects`, `_buses`, `_lock`, the RawHandler dispatch): keep it
small and keep the version pinned.
"""

from __future__ import annotations

import copy
import datetime
import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs
import jsonpatch
import kmock
from kmock._internal import apps, dicts, enums, rendering

from tests import kmock_apply

Key = tuple[Any, str | None, str]


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).replace(microsecond=0).isoformat()


def _restrict(data: Any, keep_status: bool) -> Any:
    """Only status (for /status) or everything but status (for the main endpoint)."""
    if isinstance(data, list):
        return [op for op in data if op.get("path", "").startswith("/status") == keep_status]
    if keep_status:
        return {"status": data.get("status")}
    return {k: v for k, v in data.items() if k != "status"}


def _is_apply(req: rendering.Request) -> bool:
    content_type = next((v for k, v in req.headers.items() if k.lower() == "content-type"), "")
    return str(content_type).startswith("application/apply-patch")


def _selected(obj: dict[str, Any], selector: str | None) -> bool:
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    pairs = [term.split("=", 1) for term in selector.split(",") if "=" in term]
    return all(labels.get(k.rstrip("=!")) == v.lstrip("=") for k, v in pairs)


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    _rv: int = attrs.field(default=0, init=False)
    _created: dict[int, dict[str, Any]] = attrs.field(factory=dict, init=False)
    _owners: dict[str, kmock_apply.Owners] = attrs.field(factory=dict, init=False)  # by uid

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    async def _emit(self, resource: Any, kind: str, raw: dict[str, Any]) -> None:
        await self._buses[resource].put({"type": kind, "object": raw})

    async def _create(self, req: rendering.Request) -> None:
        obj = copy.deepcopy(req.data)
        meta = obj.setdefault("metadata", {})
        if "name" not in meta and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        ns = req.namespace or meta.get("namespace")
        self._created[id(req)] = await self._insert((req.resource, ns, meta["name"]), obj)

    async def _insert(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        """Stores a new object (answered by _serve_create: generateName-safe)."""
        if key in self._objects and not self._objects[key].deleted:
            raise kmock.KubernetesError(409, "AlreadyExists", f"{key[2]} already exists")
        meta = obj.setdefault("metadata", {})
        if key[1] is not None:
            meta["namespace"] = key[1]
        meta.update(
            uid=meta.get("uid") or str(uuid.uuid4()),
            creationTimestamp=_now(),
            generation=1,
            resourceVersion=self._next_rv(),
        )
        if key in self._objects:
            self._objects[key].create(obj)
        else:
            self._objects[key] = obj
        await self._emit(key[0], "ADDED", obj)
        return obj

    async def _store(self, key: Key, new: dict[str, Any]) -> None:
        obj = self._objects[key]
        meta = new.get("metadata") or {}
        obj.history.append(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._hard_delete(key)
        else:
            await self._emit(key[0], "MODIFIED", new)

    async def _update(self, req: rendering.Request) -> None:
        key: Key = (req.resource, req.namespace, req.name or "")
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        old = copy.deepcopy(self._objects[key].raw)
        data = _restrict(req.data, keep_status=req.subresource == "status")
        try:
            new = copy.deepcopy(dict(dicts.patch_dict(old, data)))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, ValueError) as e:
            raise kmock.KubernetesError(422, "Invalid", str(e)) from e
        await self._commit(key, old, new)

    async def _apply(self, req: rendering.Request) -> None:
        key: Key = (req.resource, req.namespace, req.name or "")
        exists = key in self._objects and not self._objects[key].deleted
        old = copy.deepcopy(self._objects[key].raw) if exists else None
        uid = (old or {}).get("metadata", {}).get("uid") or str(uuid.uuid4())
        intent = _restrict(req.data, keep_status=False)
        new, owners = kmock_apply.apply(
            old, intent, self._owners.get(uid, {}), req.params.get("fieldManager", "")
        )
        self._owners[uid] = owners
        meta = new.setdefault("metadata", {})
        meta.update(uid=uid, name=key[2])
        meta["managedFields"] = kmock_apply.managed_fields(owners, new.get("apiVersion", ""))
        if old is None:
            await self._insert(key, new)
        else:
            await self._commit(key, old, new)

    async def _commit(self, key: Key, old: dict[str, Any], new: dict[str, Any]) -> None:
        meta = new.setdefault("metadata", {})
        for fixed in ("uid", "creationTimestamp", "name", "namespace"):
            if fixed in old.get("metadata", {}):
                meta[fixed] = old["metadata"][fixed]
        meta["resourceVersion"] = self._next_rv()
        generation = old.get("metadata", {}).get("generation", 1)
        meta["generation"] = generation + (1 if new.get("spec") != old.get("spec") else 0)
        await self._store(key, new)

    async def _delete(self, req: rendering.Request) -> None:
        key: Key = (req.resource, req.namespace, req.name or "")
        if key not in self._objects or self._objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        await self._mark_deleted(key)

    async def _mark_deleted(self, key: Key) -> None:
        old = copy.deepcopy(self._objects[key].raw)
        meta = old.setdefault("metadata", {})
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            meta.update(deletionTimestamp=_now(), resourceVersion=self._next_rv())
            await self._store(key, old)
        else:
            await self._hard_delete(key)

    async def _hard_delete(self, key: Key) -> None:
        obj = self._objects[key]
        raw = obj.raw
        obj.delete()
        await self._emit(key[0], "DELETED", raw)
        uid = (raw.get("metadata") or {}).get("uid")
        for other_key, other in list(self._objects.items()):
            if other.deleted:
                continue
            owners = (other.raw.get("metadata") or {}).get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                await self._mark_deleted(other_key)  # the garbage collector's cascade

    async def _handle(self, request: rendering.Request) -> Any:
        if request.resource is not None:
            async with self._lock:
                if request.action == enums.action.CREATE:
                    await self._create(request)
                elif request.action == enums.action.UPDATE and request.name is not None:
                    await (self._apply if _is_apply(request) else self._update)(request)
                elif request.action == enums.action.DELETE and request.name is not None:
                    await self._delete(request)
        response = await apps.RawHandler._handle(self, request)
        if request.action == enums.action.CREATE and response.status == 200:
            response.set_status(201)
        return response

    async def _serve_create(self, request: rendering.Request) -> rendering.Payload:
        return self._created.pop(id(request))

    def _matching(self, request: rendering.Request) -> list[dict[str, Any]]:
        selector = request.params.get("labelSelector")
        return [
            obj.raw
            for (resource, ns, _), obj in self._objects.items()
            if resource == request.resource
            and not obj.deleted
            and (request.namespace is None or ns == request.namespace)
            and _selected(obj.raw, selector)
        ]

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        if request.resource not in self._get_resources():
            raise kmock.KubernetesResourceNotFoundError()
        async with self._lock:
            return {
                "metadata": {"resourceVersion": str(self._rv)},
                "items": self._matching(request),
            }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        yield b""
        assert request.resource is not None
        since = int(request.params.get("resourceVersion") or 0)
        bus = self._buses[request.resource]
        async with self._lock:  # subscribe first, then snapshot: nothing falls in between
            mark = await bus.mark()
            snapshot = [
                o for o in self._matching(request) if int(o["metadata"]["resourceVersion"]) > since
            ]
        try:
            for obj in snapshot:
                yield {"type": "ADDED", "object": obj}
            selector = request.params.get("labelSelector")
            async for event in bus.stream(since=mark):
                meta = event["object"].get("metadata") or {}
                if request.namespace not in (None, meta.get("namespace")):
                    continue
                if int(meta.get("resourceVersion") or 0) > since and _selected(
                    event["object"], selector
                ):
                    yield event
        finally:
            await bus.unmark(mark)
