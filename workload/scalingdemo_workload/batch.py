"""What happened to each record of a request that did not fully land.

A 202 means every record is in Kafka. When that cannot be said, the client gets the exact state
of every record instead, so it resends only what needs resending:

- `ids`: acknowledged by Kafka, in the log;
- `failed`: Kafka refused them or the send failed before they left; they are not in the log;
- `unconfirmed`: sent, but no acknowledgement came within the produce timeout; they may still
  land (resending them may create duplicates, which at-least-once allows; ids de-duplicate).

Atomic batches (the transactional producer) were measured as the alternative and rejected:
see docs/workload.md, "Batches".
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaError

from .validation import Outgoing


@dataclass(frozen=True)
class BatchOutcome:
    """The state of every record of one request after a failed or incomplete produce."""

    landed: list[str]
    failed: list[dict[str, Any]]
    unconfirmed: list[dict[str, Any]]

    @property
    def rejected(self) -> bool:
        """Kafka refused a record for good: resending it unchanged cannot succeed."""
        return any(not item["retriable"] for item in self.failed)

    @classmethod
    def of(
        cls, records: list[Outgoing], deliveries: list[asyncio.Future[Any] | None]
    ) -> "BatchOutcome":
        """`deliveries[i]` is record i's future, None if it was never handed to the producer."""
        landed: list[str] = []
        failed: list[dict[str, Any]] = []
        unconfirmed: list[dict[str, Any]] = []
        for index, (record, delivery) in enumerate(zip(records, deliveries, strict=True)):
            if delivery is None:
                failed.append(
                    _failure(index, record, "not sent: the batch stopped before it", True)
                )
            elif not delivery.done():
                unconfirmed.append({"index": index, "id": record.id})
            elif delivery.cancelled():
                failed.append(_failure(index, record, "cancelled", True))
            elif (error := delivery.exception()) is not None:
                retriable = isinstance(error, KafkaError) and error.retriable
                failed.append(_failure(index, record, repr(error), retriable))
            else:
                landed.append(record.id)
        return cls(landed, failed, unconfirmed)

    def summary(self, timeout: float) -> str:
        parts = [f"{len(self.landed)} landed", f"{len(self.failed)} failed"]
        if self.unconfirmed:
            parts.append(f"{len(self.unconfirmed)} unconfirmed after {timeout:g}s")
        reason = next((item["reason"] for item in self.failed), None)
        return ", ".join(parts) + (f" (first failure: {reason})" if reason else "")

    def body(self) -> dict[str, Any]:
        """The fields added next to `error` in the response."""
        return {
            "accepted": len(self.landed),
            "ids": self.landed,
            "failed": self.failed,
            "unconfirmed": self.unconfirmed,
        }


def _failure(index: int, record: Outgoing, reason: str, retriable: bool) -> dict[str, Any]:
    return {"index": index, "id": record.id, "reason": reason, "retriable": retriable}
