"""Benchmark: CallbackCrypto.decrypt against the bare primitives it is built on.

Run with `.venv/bin/python bench/crypto.py`. Not part of the test suite.

"raw" does only the cryptographic work every decrypt needs (SHA-1 signature,
base64 decode, AES-256-CBC decrypt with a Cipher built once, like the library)
with no checks or parsing. The ratio library/raw is the share of throughput the
library keeps after its checks; the target is at least 0.5.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import modes

# Standalone script: make `wecom_provider` importable without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wecom.crypto import CallbackCrypto
from wecom.messages import parse_envelope
from wecom.messages import parse_event

TOKEN = "benchToken"
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SUITE_ID = "wwsuite0000000001"
TIMESTAMP = "1700000010"

# A create_user change_contact of about 600 bytes, the common heavy callback.
PAYLOAD = """<xml><SuiteId><![CDATA[wwsuite0000000001]]></SuiteId>\
<AuthCorpId><![CDATA[wwcorp00000000001]]></AuthCorpId>\
<InfoType><![CDATA[change_contact]]></InfoType><TimeStamp>1700000010</TimeStamp>\
<ChangeType><![CDATA[create_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
<OpenUserID><![CDATA[woFAKEopenuser0001]]></OpenUserID><Name><![CDATA[张三]]></Name>\
<Department><![CDATA[1,2,3]]></Department><MainDepartment><![CDATA[1]]></MainDepartment>\
<IsLeaderInDept><![CDATA[1,0,0]]></IsLeaderInDept>\
<DirectLeader><![CDATA[lisi,wangwu]]></DirectLeader>\
<Mobile><![CDATA[13800000000]]></Mobile><Position><![CDATA[产品经理]]></Position>\
<Gender>1</Gender><Status>1</Status></xml>"""


def make_messages(crypto: CallbackCrypto, count: int) -> list[tuple[str, str, str, str]]:
    """Return (msg_signature, timestamp, nonce, encrypt) tuples, each distinct."""
    messages = []
    for i in range(count):
        nonce = f"{1372623149 + i}"
        encrypted, signature = crypto.encrypt(PAYLOAD, TIMESTAMP, nonce)
        messages.append((signature, TIMESTAMP, nonce, encrypted))
    return messages


def raw_primitives(key: bytes) -> Callable[[str, str, str, str], bytes]:
    """Return a decrypt doing only SHA-1 + base64 + AES-CBC, no checks at all."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(key[:16]))

    def decrypt(msg_signature: str, timestamp: str, nonce: str, encrypt: str) -> bytes:
        hashlib.sha1("".join(sorted((TOKEN, timestamp, nonce, encrypt))).encode()).hexdigest()  # noqa: S324
        decryptor = cipher.decryptor()
        return decryptor.update(base64.b64decode(encrypt)) + decryptor.finalize()

    return decrypt


def measure(fn: Callable[..., object], messages: list, rounds: int) -> list[float]:
    """Return messages/s for each round of calling fn on every message."""
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for args in messages:
            fn(*args)
        rates.append(len(messages) / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    crypto = CallbackCrypto(TOKEN, ENCODING_AES_KEY, SUITE_ID)
    key = base64.b64decode(ENCODING_AES_KEY + "=")
    # A pool of distinct ciphertexts, cycled to the requested count, so nothing
    # can be served from a cache of the last input.
    pool = make_messages(crypto, 256)
    messages = [pool[i % len(pool)] for i in range(args.messages)]
    raw = raw_primitives(key)
    assert crypto.decrypt(*messages[0]) == PAYLOAD
    assert raw(*messages[0]).find(PAYLOAD.encode()) == 20

    def full_pipeline(signature: str, timestamp: str, nonce: str, encrypted: str) -> object:
        body = f"<xml><ToUserName>{SUITE_ID}</ToUserName><Encrypt>{encrypted}</Encrypt></xml>"
        envelope = parse_envelope(body.encode())
        return parse_event(crypto.decrypt(signature, timestamp, nonce, envelope.encrypt))

    # Interleave the two measurements per round so CPU frequency drift and noisy
    # neighbours hit both alike.
    lib_rates: list[float] = []
    raw_rates: list[float] = []
    for _ in range(args.rounds):
        lib_rates += measure(crypto.decrypt, messages, 1)
        raw_rates += measure(raw, messages, 1)
    pipeline_rates = measure(
        full_pipeline, messages[: args.messages // 4], max(3, args.rounds // 2)
    )

    encrypted_len = len(messages[0][3])
    print(
        f"payload {len(PAYLOAD.encode())} B, Encrypt {encrypted_len} chars, "
        f"{args.messages} messages x {args.rounds} rounds"
    )
    rows = [
        ("CallbackCrypto.decrypt (verify+decrypt)", lib_rates),
        ("raw primitives (sha1+b64+aes-cbc)", raw_rates),
        ("envelope+decrypt+parse_event (info)", pipeline_rates),
    ]
    for label, rates in rows:
        best, median = max(rates), statistics.median(rates)
        print(f"{label:42s} best {best:>10,.0f} msg/s   median {median:>10,.0f} msg/s")
    best_ratio = max(lib_rates) / max(raw_rates)
    median_ratio = statistics.median(lib_rates) / statistics.median(raw_rates)
    verdict = "OK" if median_ratio >= 0.5 else "BELOW TARGET"
    print(f"ratio library/raw: best {best_ratio:.2f}, median {median_ratio:.2f} (target >= 0.5)")
    print(verdict)


if __name__ == "__main__":
    main()
