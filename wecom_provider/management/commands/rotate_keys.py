"""manage.py rotate_keys [--batch-size N] [--retire KEY_ID]

Re-encrypts every sealed value that is not under the primary (first) key of
FIELD_ENCRYPTION_KEYS, online: each row is rewritten with a compare-and-set on its
old ciphertext, so a concurrent writer is never overwritten and readers keep working
(both keys stay in the ring until the old one is retired).

Retiring: rotate, then `rotate_keys --retire OLD` confirms no value uses OLD any more,
neither a database row nor a value cached in Redis (wecom_provider.sealed_cache), and
refuses otherwise, saying what to run; `--drop-cached` drops cached values not under
the primary key (readers fall back to the re-sealed rows). Only then remove OLD from
FIELD_ENCRYPTION_KEYS.
"""

from __future__ import annotations

from collections import Counter

from django.core.management.base import BaseCommand
from django.core.management.base import CommandError

from wecom_provider import sealed_cache
from wecom_provider.fieldcrypt import SEALED_FIELDS
from wecom_provider.fieldcrypt import FieldCryptError
from wecom_provider.fieldcrypt import SealedSecret
from wecom_provider.fieldcrypt import key_id_of
from wecom_provider.fieldcrypt import keyring
from wecom_provider.progress import Progress


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest key; optionally retire an old key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--retire", metavar="KEY_ID", help="after rotating, verify no value uses KEY_ID"
        )
        parser.add_argument(
            "--drop-cached",
            action="store_true",
            help="drop values cached in Redis that are not sealed with the primary key",
        )
        parser.add_argument(
            "--verify-only", action="store_true", help="report key usage without re-encrypting"
        )

    def handle(
        self,
        *args,
        batch_size: int,
        retire: str | None,
        verify_only: bool,
        drop_cached: bool = False,
        **options,
    ) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1")
        ring = keyring()
        if retire and retire == ring.primary_id:
            raise CommandError(f"{retire!r} is the primary key; add a new key first")
        self.stdout.write(f"primary key: {ring.primary_id}")
        failures = 0
        rotated = 0
        for sealed_field in [] if verify_only else SEALED_FIELDS:
            done, failed = self._rotate(sealed_field, ring.primary_id, batch_size)
            rotated += done
            failures += failed
        usage = self._usage()
        if drop_cached:
            # After the rows: a reader refilling the cache now copies a re-sealed row.
            dropped = sealed_cache.drop_not_under(ring.primary_id)
            self.stdout.write(f"dropped {dropped} cached value(s) not under the primary key")
        cached = sealed_cache.cached_usage()
        self.stdout.write(
            "cached values per key id: "
            + (", ".join(f"{k}={n}" for k, n in sorted(cached.items())) or "none")
        )
        self.stdout.write(f"re-encrypted {rotated} value(s)")
        self.stdout.write(
            "values per key id: " + ", ".join(f"{k}={n}" for k, n in sorted(usage.items()))
            if usage
            else "no sealed values stored"
        )
        if failures:
            raise CommandError(f"{failures} value(s) could not be opened; see the log above")
        if retire:
            if usage.get(retire):
                raise CommandError(
                    f"key {retire!r} is still used by {usage[retire]} value(s); not safe to remove"
                )
            if cached.get(retire):
                raise CommandError(
                    f"key {retire!r} still seals {cached[retire]} value(s) cached in Redis; "
                    "run `manage.py rotate_keys --drop-cached` first"
                )
            self.stdout.write(
                f"key {retire!r} is unused: safe to remove from FIELD_ENCRYPTION_KEYS"
            )

    def _stale(self, sealed_field: SealedSecret, primary: str):
        model, column = sealed_field.model, sealed_field.column
        return (
            model._default_manager.exclude(**{column: ""})
            .exclude(**{f"{column}__startswith": f"v1:{primary}:"})
            .order_by("pk")
        )

    def _rotate(self, sealed_field: SealedSecret, primary: str, batch_size: int) -> tuple[int, int]:
        model, column = sealed_field.model, sealed_field.column
        label = f"{model._meta.label}.{sealed_field.name}"
        total = self._stale(sealed_field, primary).count()
        done = failed = 0
        last_pk = 0
        with Progress(self.stdout, total, label) as progress:
            while True:
                batch = list(self._stale(sealed_field, primary).filter(pk__gt=last_pk)[:batch_size])
                if not batch:
                    break
                for row in batch:
                    last_pk = row.pk
                    old = getattr(row, column)
                    try:
                        plaintext = sealed_field.__get__(row)
                    except FieldCryptError as exc:
                        self.stderr.write(f"{label} pk={row.pk}: {exc}")
                        failed += 1
                        progress.advance()
                        continue
                    sealed_field.__set__(row, plaintext)
                    # Compare-and-set: skip the row if someone rewrote it meanwhile (their
                    # value is under the primary key already).
                    done += model._default_manager.filter(pk=row.pk, **{column: old}).update(
                        **{column: getattr(row, column)}
                    )
                    progress.advance()
        return done, failed

    def _usage(self) -> Counter:
        usage: Counter = Counter()
        for sealed_field in SEALED_FIELDS:
            values = (
                sealed_field.model._default_manager.exclude(**{sealed_field.column: ""})
                .values_list(sealed_field.column, flat=True)
                .iterator(chunk_size=2000)
            )
            for value in values:
                try:
                    usage[key_id_of(value)] += 1
                except FieldCryptError:
                    usage["<unreadable>"] += 1
        return usage
