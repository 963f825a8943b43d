"""What the operator knows of the cluster, kept current by watches, so a reconcile reads memory.

kopf feeds one in-memory index per watched kind (the handlers register them with
`@kopf.index`): the ScalingDemos, every child kind, the CRDs of the add-ons, and the data of
the Secrets labelled as Kafka credentials. This module says what each index holds (bodies
without `managedFields`, which nothing compares and which are the bulk of an object) and reads
them back the way the reconcile asks: one demo, the children of a demo, the versions an add-on's
CRD serves, a credential. No LIST or GET is sent for any of it.

Completeness: kopf calls no resource handler until every index has finished its initial
listing (`processing.process_resource_event` waits on the operator-wide "indexed" toggles after
indexing each object). The handlers set `complete` from such a handler, and every reconcile
waits for it, so nothing acts on a half-filled cache after a restart, including the operator's
own resync and retries, which kopf does not gate.

Add-on CRDs: when a CRD is deleted, the API server deletes its objects, but the watch of that
kind may end before their deletions arrive, leaving them in the index. A child of an add-on kind
therefore counts only while its CRD exists and only if it is not older than that CRD: objects
of a deleted-and-re-created CRD are never taken for the new CRD's objects.

Our own writes: a reconcile can start before the watch has brought what the previous one wrote
(a trigger queued behind it reads right after it). The cache therefore remembers each child it
applied or deleted, with the version the write was decided on, and shows the write instead of
that version until the watch brings another one (a deleted child: until the watch drops it);
otherwise the next reconcile would apply the same change again and announce it twice.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import metrics
from .api import (
    CHILD_KINDS,
    CREDENTIALS_LABEL,
    INSTANCE_LABEL,
    ChildKind,
    Manifest,
    Owner,
)
from .spec import SecretReference, SpecError, parse

POLL_SECONDS = 0.05
"""How often `newer` looks at memory for a version the watch has not brought yet."""
Key = tuple[str, str]
"""(namespace, name): of a demo, or of the demo a child names in its instance label."""
Index = Mapping[Any, Iterable[Any]]
"""A kopf index as the reconcile sees it: key -> the values of every object under that key."""
ChildName = tuple[str, str]
"""(kind, name) of a child within its demo."""


@dataclass(frozen=True)
class Write:
    """A child we wrote, and the object the API server returned (None: we deleted it)."""

    read: tuple[str, str] | None
    """(uid, resourceVersion) of the child the write was decided on; None: it did not exist."""
    after: Manifest | None

    def pending(self, seen: Manifest | None) -> bool:
        """The watch has not brought this write yet.

        A create is pending while the watch shows no child. Applies and deletions carry no
        precondition, so another client's write (the Deployment controller's status update)
        can land between our read and our write, and reach the watch after our write was
        answered: an update is pending while the watch shows a version older than ours, and a
        deletion until the watch drops the child. Shown instead, such a version would make the
        next reconcile write, and announce, the same change twice.
        """
        if self.read is None:
            return seen is None
        if seen is None:
            return False
        uid, version = self.read
        if seen["metadata"].get("uid") != uid:
            return False
        if self.after is None:
            return True
        shown = seen["metadata"].get("resourceVersion")
        older = _older(shown, self.after["metadata"].get("resourceVersion"))
        return shown == version if older is None else older


def _older(version: str | None, than: str | None) -> bool | None:
    """Whether `version` comes before `than`, or None when they cannot be compared.

    Kubernetes 1.35 made the resourceVersions of one resource type comparable as integers
    (KEP-5504, part of conformance since); an API server that serves another form leaves a
    client only equality, and a write then stays pending only while its read version shows.
    """
    if version is None or than is None or not (version.isdigit() and than.isdigit()):
        return None
    return int(version) < int(than)


def trimmed(body: Mapping[str, Any]) -> Manifest:
    """The object without its managedFields (a copy: kopf reuses the body it hands out)."""
    metadata = {key: value for key, value in body["metadata"].items() if key != "managedFields"}
    return {**body, "metadata": metadata}


def demo_key(body: Mapping[str, Any]) -> Key:
    return (body["metadata"]["namespace"], body["metadata"]["name"])


def child_key(body: Mapping[str, Any]) -> Key:
    """The demo a child belongs to by its labels (what the ownership selector matched)."""
    labels = body["metadata"].get("labels") or {}
    return (body["metadata"]["namespace"], labels.get(INSTANCE_LABEL, ""))


Basis = tuple[Any, ...]
"""What the desired children follow besides the owner: the spec's generation, the Strimzi
version in use."""


def versions(children: Iterable[Mapping[str, Any]]) -> frozenset[tuple[str, str, str]]:
    """(kind, name, resourceVersion) of each child: any change to any of them changes this."""
    return frozenset(
        (item["kind"], item["metadata"]["name"], item["metadata"].get("resourceVersion", ""))
        for item in children
    )


@dataclass(frozen=True)
class CrdFacts:
    """What the reconcile needs of an add-on's CRD."""

    created: str
    served: tuple[str, ...]


def crd_name(child: ChildKind) -> str:
    return f"{child.plural}.{child.group}"


ADD_ON_CRDS = frozenset(crd_name(child) for child in CHILD_KINDS if child.add_on is not None)


def crd_facts(body: Mapping[str, Any]) -> CrdFacts:
    versions = body.get("spec", {}).get("versions", [])
    return CrdFacts(
        created=body["metadata"].get("creationTimestamp", ""),
        served=tuple(item["name"] for item in versions if item.get("served")),
    )


def _with_writes(
    kind: str, watched: dict[str, Manifest], written: dict[ChildName, Write]
) -> list[Manifest]:
    """The watched children of one kind, our writes standing in for the versions they were
    decided on; a write is forgotten once the watch has brought it (`Write.pending`)."""
    shown = dict(watched)
    for (written_kind, name), write in list(written.items()):
        if written_kind != kind:
            continue
        if not write.pending(watched.get(name)):
            del written[(written_kind, name)]
        elif write.after is None:
            shown.pop(name, None)
        else:
            shown[name] = write.after
    return list(shown.values())


def _first(values: Iterable[Any] | None) -> Any:
    return next(iter(values or ()), None)


class Cache:
    """The indexes kopf fills, bound once at startup; `complete` once all were listed."""

    def __init__(self) -> None:
        self._demos: Index = {}
        self._children: Mapping[str, Index] = {}
        self._crds: Index = {}
        self._secrets: Index = {}
        self._verified: dict[str, tuple[Basis, frozenset[tuple[str, str, str]]]] = {}
        """uid -> the basis and the children's versions of the last reconcile that left every
        child as wanted."""
        self._children_written: dict[str, dict[ChildName, Write]] = {}
        """uid -> the children our reconciles wrote that the watch may not have brought yet."""
        self._written: dict[str, tuple[str, Manifest]] = {}
        """uid -> (resourceVersion read, the demo our status patch returned): the watch may not
        have brought our own write yet, and a status computed on the older body would be refused."""
        self.complete = asyncio.Event()

    def bind(
        self, demos: Index, children: Mapping[str, Index], crds: Index, secrets: Index
    ) -> None:
        """Take the live indexes (kopf keeps filling the same objects)."""
        self._demos, self._children, self._crds = demos, children, crds
        self._secrets = secrets

    def listed(self) -> None:
        """Every index has been listed: reconciles may read."""
        self.complete.set()
        metrics.CACHE_COMPLETE.set(1)

    def demo(self, owner: Owner) -> Manifest | None:
        """The demo as last watched, or as our own status write left it if the watch has not
        brought that yet; None when gone or replaced by one of another uid."""
        found: list[Manifest] = list(self._demos.get((owner.namespace, owner.name), ()))
        body = next((item for item in found if item["metadata"]["uid"] == owner.uid), None)
        written = self._written.pop(owner.uid, None)
        if body is None:
            self._verified.pop(owner.uid, None)
        if body is None or written is None:
            return body
        read_version, after = written
        if body["metadata"].get("resourceVersion") != read_version:
            return body
        self._written[owner.uid] = written
        return after

    def unobserved(self, owner: Owner) -> bool:
        """The demo's status has not observed its current generation (it is new or was edited;
        or is paused, invalid or failing, whose status keeps the generation last applied);
        False when it is gone."""
        body = self.demo(owner)
        if body is None:
            return False
        status = body.get("status") or {}
        return bool(status.get("observedGeneration") != body["metadata"].get("generation"))

    async def newer(self, owner: Owner, version: str | None, seconds: float) -> Manifest | None:
        """The demo once the watch has brought a version other than `version` (a write that
        refused ours is on its way), or None if it is gone or nothing came within `seconds`."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            body = self.demo(owner)
            if body is None or body["metadata"].get("resourceVersion") != version:
                return body
            if asyncio.get_running_loop().time() > deadline:
                return None
            await asyncio.sleep(POLL_SECONDS)

    def verified(self, owner: Owner, basis: Basis, children: Iterable[Manifest]) -> None:
        """These children are exactly what `basis` wants (nothing failed, nothing is left)."""
        self._verified[owner.uid] = (basis, versions(children))

    def unchanged(self, owner: Owner, basis: Basis, children: Iterable[Manifest]) -> bool:
        """Same basis and the very same child versions as when last verified."""
        return self._verified.get(owner.uid) == (basis, versions(children))

    def wrote(self, owner: Owner, read_version: str | None, after: Mapping[str, Any]) -> None:
        """Our status patch turned the demo read at `read_version` into `after`."""
        if read_version is not None:
            self._written[owner.uid] = (read_version, trimmed(after))

    def owners(self) -> list[Owner]:
        """Every demo watched; what is remembered of demos no longer there is forgotten."""
        owners = [Owner.from_body(body) for bodies in self._demos.values() for body in bodies]
        present = {owner.uid for owner in owners}
        for memory in (self._verified, self._written, self._children_written):
            for uid in memory.keys() - present:
                del memory[uid]
        return owners

    def secret_values(
        self, namespace: str, references: Sequence[SecretReference]
    ) -> dict[SecretReference, str]:
        """Decoded values of (Secret name, key) pairs; a Secret that is not watched or lacks the
        key raises LookupError naming it, a value that is not base64 UTF-8 text ValueError."""
        values = {}
        for name, key in references:
            data: Mapping[str, str] | None = _first(self._secrets.get((namespace, name)))
            if data is None:
                raise LookupError(
                    f"Secret {namespace}/{name} does not exist or is not labelled "
                    f"{CREDENTIALS_LABEL}=true (the operator reads only Secrets so labelled: "
                    f"kubectl label secret -n {namespace} {name} {CREDENTIALS_LABEL}=true)"
                )
            if key not in data:
                raise LookupError(f"Secret {namespace}/{name} has no key {key}")
            values[(name, key)] = base64.b64decode(data[key]).decode()
        return values

    def using_secret(self, namespace: str, name: str) -> list[Owner]:
        """The demos of the namespace whose spec.kafka.auth names this Secret."""
        found = []
        for (demo_namespace, _), bodies in self._demos.items():
            if demo_namespace != namespace:
                continue
            for body in bodies:
                try:
                    references = parse(body.get("spec") or {}).kafka.secret_references()
                except SpecError:
                    continue
                if any(secret == name for secret, _ in references):
                    found.append(Owner.from_body(body))
        return found

    def served_version(self, child: ChildKind) -> str | None:
        """The first of the kind's versions its CRD serves; None when the CRD is absent."""
        facts: CrdFacts | None = _first(self._crds.get(crd_name(child)))
        if facts is None:
            return None
        return next((version for version in child.versions if version in facts.served), None)

    def children(self, owner: Owner, kinds: Sequence[ChildKind]) -> list[Manifest]:
        """Every child of the owner among `kinds`: labelled as its child, and controlled by its
        uid or by nothing (KafkaTopics kept on deletion carry no owner; look-alikes owned by
        another object are left alone). An add-on kind counts only while its CRD exists. Our
        own writes the watch has not brought yet stand in for what it still shows."""
        written = self._children_written.get(owner.uid, {})
        found = []
        for child in kinds:
            floor = self._floor(child)
            if floor is None:
                continue
            watched = {}
            for item in self._children.get(child.kind, {}).get((owner.namespace, owner.name), ()):
                metadata = item["metadata"]
                references = metadata.get("ownerReferences", [])
                if metadata.get("creationTimestamp", "") < floor:
                    continue
                if not references or any(ref.get("uid") == owner.uid for ref in references):
                    watched[metadata["name"]] = item
            found.extend(_with_writes(child.kind, watched, written))
        return found

    def applied(self, owner: Owner, current: Manifest | None, after: Manifest | None) -> None:
        """We created, updated (`after`) or deleted (None) the child the reconcile saw as
        `current` (None: it did not exist)."""
        subject = after if after is not None else current
        if subject is None:
            return
        name = (subject["kind"], subject["metadata"]["name"])
        read = None
        if current is not None:
            read = (current["metadata"].get("uid"), current["metadata"].get("resourceVersion"))
        kept = None if after is None else trimmed(after)
        self._children_written.setdefault(owner.uid, {})[name] = Write(read, kept)

    def _floor(self, child: ChildKind) -> str | None:
        """Objects created before this are stale (see the module docstring); None: no CRD."""
        if child.add_on is None:
            return ""
        facts: CrdFacts | None = _first(self._crds.get(crd_name(child)))
        return None if facts is None else facts.created
