"""CallbackCrypto against an independent reference of protocol doc §7.4.

The reference below is written from the documented algorithm with raw
`cryptography` primitives and shares no code with the library, so a bug in one
shows up as a mismatch with the other.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import string
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.ciphers import modes
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from wecom.crypto import CallbackCrypto
from wecom.crypto import CallbackCryptoError
from wecom.crypto import IllegalBuffer
from wecom.crypto import InvalidAesKey
from wecom.crypto import InvalidBase64
from wecom.crypto import InvalidPadding
from wecom.crypto import InvalidSignature
from wecom.crypto import MalformedCiphertext
from wecom.crypto import ReceiveIdMismatch
from wecom.crypto import sign

# Fake values only. The key's last character ("G") carries non-zero padding bits,
# which a strict decoder would reject: the library must not.
TOKEN = "fakeCallbackToken01"
ENCODING_AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
SUITE_ID = "wwddddccc7775555aaa"
PROVIDER_CORP_ID = "wxprovider0000000001"
TIMESTAMP = "1700000000"
NONCE = "1372623149"
FIXED_PREFIX = b"0123456789abcdef"
MESSAGE = (
    "<xml><SuiteId><![CDATA[wwddddccc7775555aaa]]></SuiteId>"
    "<InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1700000000</TimeStamp>"
    "<SuiteTicket><![CDATA[asdfasfdasdfasdf]]></SuiteTicket></xml>"
)


# --- reference implementation (§7.4), deliberately naive ---------------------------


def ref_key(encoding_aes_key: str) -> bytes:
    # Pad the 43 chars to a 44-char quantum; b64decode ignores stray low bits.
    return base64.b64decode(encoding_aes_key + "=")


def ref_sign(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324


def ref_raw_encrypt(key: bytes, plain: bytes) -> str:
    """Return base64(AES-256-CBC(plain)) with no padding added by the cipher."""
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def ref_raw_decrypt(key: bytes, encrypted: str) -> bytes:
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    return dec.update(base64.b64decode(encrypted)) + dec.finalize()


def ref_plain(msg: bytes, receive_id: str, prefix: bytes = FIXED_PREFIX, block: int = 32) -> bytes:
    body = prefix + struct.pack(">I", len(msg)) + msg + receive_id.encode()
    pad = block - len(body) % block
    return body + bytes([pad] * pad)


def ref_encrypt(key: bytes, msg: bytes, receive_id: str, prefix: bytes = FIXED_PREFIX) -> str:
    return ref_raw_encrypt(key, ref_plain(msg, receive_id, prefix))


def ref_decrypt(key: bytes, encrypted: str) -> tuple[bytes, bytes, str]:
    """Return (random prefix, message, receive id)."""
    plain = ref_raw_decrypt(key, encrypted)
    pad = plain[-1]
    assert 1 <= pad <= 32
    assert plain[-pad:] == bytes([pad] * pad)
    plain = plain[:-pad]
    (n,) = struct.unpack(">I", plain[16:20])
    return plain[:16], plain[20 : 20 + n], plain[20 + n :].decode()


KEY = ref_key(ENCODING_AES_KEY)


def make_crypto(receive_id: str = SUITE_ID, **kwargs) -> CallbackCrypto:
    return CallbackCrypto(TOKEN, ENCODING_AES_KEY, receive_id, **kwargs)


def signed(encrypted: str, timestamp: str = TIMESTAMP, nonce: str = NONCE) -> tuple:
    """Return decrypt() arguments for a ciphertext, signed by the reference."""
    return ref_sign(TOKEN, timestamp, nonce, encrypted), timestamp, nonce, encrypted


@pytest.fixture
def crypto() -> CallbackCrypto:
    return make_crypto()


# --- interop with the reference ------------------------------------------------------


def test_reference_ciphertext_decrypts_with_library(crypto):
    encrypted = ref_encrypt(KEY, MESSAGE.encode(), SUITE_ID)

    assert crypto.decrypt(*signed(encrypted)) == MESSAGE


def test_library_ciphertext_is_byte_identical_to_reference():
    crypto = make_crypto(_random=lambda n: FIXED_PREFIX[:n])

    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    assert encrypted == ref_encrypt(KEY, MESSAGE.encode(), SUITE_ID)
    assert signature == ref_sign(TOKEN, TIMESTAMP, NONCE, encrypted)
    assert ref_decrypt(KEY, encrypted) == (FIXED_PREFIX, MESSAGE.encode(), SUITE_ID)


def test_library_ciphertext_decrypts_with_reference_using_random_prefix(crypto):
    encrypted, _ = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    prefix, msg, receive_id = ref_decrypt(KEY, encrypted)

    assert (msg, receive_id) == (MESSAGE.encode(), SUITE_ID)
    assert len(prefix) == 16


def test_random_prefix_differs_between_calls(crypto):
    first, _ = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)
    second, _ = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    assert first != second


def test_go_style_16_byte_padding_is_accepted(crypto):
    # go-wecom pads to 16 (§7.4 Interop); official decryptors accept it, so do we.
    plain = ref_plain(b"<xml/>", SUITE_ID, block=16)
    encrypted = ref_raw_encrypt(KEY, plain)

    assert crypto.decrypt(*signed(encrypted)) == "<xml/>"


@pytest.mark.parametrize("length", range(100))
def test_ciphertext_length_is_a_multiple_of_32(crypto, length):
    encrypted, _ = crypto.encrypt("x" * length, TIMESTAMP, NONCE)

    assert len(base64.b64decode(encrypted)) % 32 == 0


def test_aligned_plaintext_gains_a_whole_pad_block():
    crypto = make_crypto(_random=lambda n: FIXED_PREFIX[:n])
    # 16 + 4 + len(msg) + len(receive id) == 64: already aligned.
    msg = "m" * (64 - 20 - len(SUITE_ID))

    encrypted, _ = crypto.encrypt(msg, TIMESTAMP, NONCE)
    plain = ref_raw_decrypt(KEY, encrypted)

    assert len(plain) == 96
    assert plain[-32:] == bytes([32] * 32)


def test_signature_is_independent_of_argument_order():
    parts = (TOKEN, TIMESTAMP, NONCE, "c2lnbmVk")

    signatures = {sign(*p) for p in itertools.permutations(parts)}

    assert signatures == {ref_sign(*parts)}


def test_signature_method_uses_the_token(crypto):
    assert crypto.signature(TIMESTAMP, NONCE, "abc") == ref_sign(TOKEN, TIMESTAMP, NONCE, "abc")


def test_encrypt_accepts_int_timestamp_and_bytes_message(crypto):
    encrypted, signature = crypto.encrypt(b"<xml/>", 1700000000, NONCE)

    assert signature == ref_sign(TOKEN, TIMESTAMP, NONCE, encrypted)
    assert crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted) == "<xml/>"


# --- property tests ------------------------------------------------------------------

receive_ids = st.sampled_from(["", SUITE_ID, "ww1234567890abcdef", "dk企业模板"])


@settings(max_examples=300, deadline=None)
@given(message=st.text(), receive_id=receive_ids)
def test_round_trip_arbitrary_text(message, receive_id):
    crypto = make_crypto(receive_id)

    encrypted, signature = crypto.encrypt(message, TIMESTAMP, NONCE)

    assert crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted) == message
    assert crypto.decrypt_with_receive_id(signature, TIMESTAMP, NONCE, encrypted) == (
        message,
        receive_id,
    )
    assert ref_decrypt(KEY, encrypted)[1:] == (message.encode(), receive_id)


@settings(max_examples=200, deadline=None)
@given(
    message=st.text(alphabet=st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)),
    prefix=st.binary(min_size=16, max_size=16),
)
def test_round_trip_chinese_from_reference(message, prefix):
    crypto = make_crypto()
    encrypted = ref_encrypt(KEY, message.encode(), SUITE_ID, prefix)

    assert crypto.decrypt(*signed(encrypted)) == message


@pytest.mark.parametrize("message", ["", "企业微信", "<xml>" + "数据" * 500 + "</xml>"])
def test_round_trip_edge_messages(crypto, message):
    encrypted, signature = crypto.encrypt(message, TIMESTAMP, NONCE)

    assert crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted) == message


# --- tampering: every position of every signed input ----------------------------------


def _substitutes(value: str, alphabet: str):
    """Yield (position, tampered value) replacing each character by another one."""
    for i, char in enumerate(value):
        other = alphabet[(alphabet.index(char) + 1) % len(alphabet)] if char in alphabet else "A"
        yield i, value[:i] + other + value[i + 1 :]


B64_ALPHABET = string.ascii_letters + string.digits + "+/="


def test_every_tampered_signature_char_is_rejected(crypto):
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    for _, bad in _substitutes(signature, "0123456789abcdef"):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(bad, TIMESTAMP, NONCE, encrypted)
    for bad in (signature.upper(), signature[:-1], signature + "0", "", "é" * 40):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(bad, TIMESTAMP, NONCE, encrypted)


def test_every_tampered_timestamp_char_is_rejected(crypto):
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    for _, bad in _substitutes(TIMESTAMP, string.digits):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, bad, NONCE, encrypted)
    for bad in (TIMESTAMP[:-1], TIMESTAMP + "0", " " + TIMESTAMP):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, bad, NONCE, encrypted)


def test_every_tampered_nonce_char_is_rejected(crypto):
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    for _, bad in _substitutes(NONCE, string.digits):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, TIMESTAMP, bad, encrypted)
    for bad in (NONCE[:-1], NONCE + "0", ""):
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, TIMESTAMP, bad, encrypted)


def test_every_tampered_ciphertext_char_is_rejected(crypto):
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    tampered = [bad for _, bad in _substitutes(encrypted, B64_ALPHABET)]
    tampered += [encrypted[:-1], encrypted + "A", encrypted[1:], " " + encrypted]
    assert len(tampered) >= len(encrypted)
    for bad in tampered:
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, TIMESTAMP, NONCE, bad)


def test_every_tampered_ciphertext_byte_is_rejected(crypto):
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)
    raw = base64.b64decode(encrypted)

    for i in range(len(raw)):
        flipped = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1 :]
        with pytest.raises(InvalidSignature):
            crypto.decrypt(signature, TIMESTAMP, NONCE, base64.b64encode(flipped).decode())


def test_resigned_tampered_bytes_only_raise_crypto_errors(crypto):
    # With a valid signature over a corrupted ciphertext (an attacker holding the
    # Token), decrypting may garble or fail, but only with our typed errors.
    encrypted, _ = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)
    raw = base64.b64decode(encrypted)

    outcomes = set()
    for i, bit in itertools.product(range(len(raw)), (0x01, 0x80)):
        flipped = raw[:i] + bytes([raw[i] ^ bit]) + raw[i + 1 :]
        try:
            result = crypto.decrypt(*signed(base64.b64encode(flipped).decode()))
        except CallbackCryptoError as exc:
            outcomes.add(type(exc))
        else:
            assert isinstance(result, str)
            outcomes.add(str)
    # Flips in the last blocks garble padding/receive id; some must be caught.
    assert outcomes - {str}


# --- malformed but correctly signed ciphertexts ---------------------------------------


@pytest.mark.parametrize(
    "encrypted",
    ["not base64!", "YWJj ZA==", "YWJjZA=", "=YWJj", "YWJjZA==x", "企业", "YWJj\n"],
)
def test_invalid_base64_is_rejected(crypto, encrypted):
    with pytest.raises(InvalidBase64) as info:
        crypto.decrypt(*signed(encrypted))
    assert info.value.code == -40010


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 31, 33, 40, 63])
def test_ciphertext_of_wrong_size_is_rejected(crypto, size):
    encrypted = base64.b64encode(b"\x00" * size).decode()

    with pytest.raises(MalformedCiphertext):
        crypto.decrypt(*signed(encrypted))


@pytest.mark.parametrize("pad", [0, 33, 64, 255])
def test_pad_value_outside_1_to_32_is_rejected(crypto, pad):
    body = FIXED_PREFIX + struct.pack(">I", 3) + b"abc" + SUITE_ID.encode()
    body += b"\x00" * (-(len(body) + 1) % 32) + bytes([pad])
    encrypted = ref_raw_encrypt(KEY, body)

    with pytest.raises(InvalidPadding) as info:
        crypto.decrypt(*signed(encrypted))
    assert info.value.code == -40007


def test_inconsistent_pad_bytes_are_rejected(crypto):
    plain = bytearray(ref_plain(b"abc", SUITE_ID))
    pad = plain[-1]
    assert pad >= 2
    plain[-2] ^= 0xFF
    encrypted = ref_raw_encrypt(KEY, bytes(plain))

    with pytest.raises(InvalidPadding):
        crypto.decrypt(*signed(encrypted))


@pytest.mark.parametrize("claimed", [4 + len(SUITE_ID), 1000, 2**32 - 1])
def test_length_prefix_past_the_end_is_rejected(crypto, claimed):
    plain = bytearray(ref_plain(b"abc", SUITE_ID))
    plain[16:20] = struct.pack(">I", claimed)
    encrypted = ref_raw_encrypt(KEY, bytes(plain))

    with pytest.raises(IllegalBuffer) as info:
        crypto.decrypt(*signed(encrypted))
    assert info.value.code == -40008


def test_plaintext_shorter_than_header_is_rejected(crypto):
    # 32 bytes of which 16 are padding: only 16 left, no room for the length.
    encrypted = ref_raw_encrypt(KEY, FIXED_PREFIX + bytes([16] * 16))

    with pytest.raises(IllegalBuffer):
        crypto.decrypt(*signed(encrypted))


def test_message_that_is_not_utf8_is_rejected(crypto):
    encrypted = ref_encrypt(KEY, b"\xff\xfe<xml/>", SUITE_ID)

    with pytest.raises(IllegalBuffer):
        crypto.decrypt(*signed(encrypted))


# --- receive id --------------------------------------------------------------------------


def test_wrong_receive_id_is_rejected(crypto):
    encrypted = ref_encrypt(KEY, MESSAGE.encode(), "ww_some_other_corp")

    with pytest.raises(ReceiveIdMismatch) as info:
        crypto.decrypt(*signed(encrypted))
    assert info.value.code == -40005


@pytest.mark.parametrize("found", [SUITE_ID[:-1], SUITE_ID + "x", "", SUITE_ID.upper()])
def test_near_miss_receive_ids_are_rejected(crypto, found):
    encrypted = ref_encrypt(KEY, MESSAGE.encode(), found)

    with pytest.raises(ReceiveIdMismatch):
        crypto.decrypt(*signed(encrypted))


def test_extra_receive_ids_are_accepted_and_reported():
    crypto = make_crypto(extra_receive_ids=[PROVIDER_CORP_ID])
    encrypted = ref_encrypt(KEY, MESSAGE.encode(), PROVIDER_CORP_ID)

    assert crypto.decrypt_with_receive_id(*signed(encrypted)) == (MESSAGE, PROVIDER_CORP_ID)


def test_extra_receive_id_given_as_a_bare_string_is_one_id():
    crypto = make_crypto(extra_receive_ids=PROVIDER_CORP_ID)

    with pytest.raises(ReceiveIdMismatch):
        crypto.decrypt(*signed(ref_encrypt(KEY, b"<xml/>", PROVIDER_CORP_ID[0])))
    assert crypto.decrypt(*signed(ref_encrypt(KEY, b"<xml/>", PROVIDER_CORP_ID))) == "<xml/>"


def test_per_call_receive_ids_replace_the_default(crypto):
    corp_encrypted = ref_encrypt(KEY, b"<xml/>", "wwcorp")
    suite_encrypted = ref_encrypt(KEY, b"<xml/>", SUITE_ID)

    assert crypto.decrypt(*signed(corp_encrypted), receive_ids=["wwcorp", "wwother"]) == "<xml/>"
    with pytest.raises(ReceiveIdMismatch):
        crypto.decrypt(*signed(suite_encrypted), receive_ids=["wwcorp"])


def test_personal_subject_apps_use_an_empty_receive_id():
    crypto = make_crypto("")
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)

    assert ref_decrypt(KEY, encrypted)[2] == ""
    assert crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted) == MESSAGE
    with pytest.raises(ReceiveIdMismatch):
        make_crypto(SUITE_ID).decrypt(signature, TIMESTAMP, NONCE, encrypted)


# --- keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_key",
    [
        "",
        ENCODING_AES_KEY[:-1],
        ENCODING_AES_KEY + "A",
        ENCODING_AES_KEY + "=",
        ENCODING_AES_KEY[:-1] + "=",
        ENCODING_AES_KEY[:-1] + "-",
        ENCODING_AES_KEY[:-1] + "_",
        ENCODING_AES_KEY[:-1] + " ",
        ENCODING_AES_KEY[:-1] + "é",
        " " + ENCODING_AES_KEY[1:],
        ENCODING_AES_KEY[:-1] + "\n",
    ],
)
def test_bad_key_is_rejected_at_construction(bad_key):
    with pytest.raises(InvalidAesKey) as info:
        CallbackCrypto(TOKEN, bad_key, SUITE_ID)
    assert info.value.code == -40004


def test_non_string_key_is_rejected():
    with pytest.raises(InvalidAesKey):
        CallbackCrypto(TOKEN, KEY, SUITE_ID)  # type: ignore[arg-type]


@pytest.mark.parametrize("last", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
def test_last_key_char_with_padding_bits_is_decoded_leniently(last):
    # Only the top 4 bits of the 43rd char are key material; the rest are ignored.
    encoding_aes_key = ENCODING_AES_KEY[:-1] + last
    key = ref_key(encoding_aes_key)
    crypto = CallbackCrypto(TOKEN, encoding_aes_key, SUITE_ID)

    assert crypto.decrypt(*signed(ref_encrypt(key, b"<xml/>", SUITE_ID))) == "<xml/>"


def test_other_key_cannot_decrypt(crypto):
    other_key = base64.b64encode(bytes(range(32))).decode()[:43]
    encrypted, signature = CallbackCrypto(TOKEN, other_key, SUITE_ID).encrypt(
        MESSAGE, TIMESTAMP, NONCE
    )

    with pytest.raises(MalformedCiphertext):
        crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted)


# --- errors and secrets --------------------------------------------------------------


def _failures() -> list[CallbackCryptoError]:
    crypto = make_crypto()
    encrypted, signature = crypto.encrypt(MESSAGE, TIMESTAMP, NONCE)
    calls = [
        lambda: crypto.decrypt("0" * 40, TIMESTAMP, NONCE, encrypted),
        lambda: crypto.decrypt(*signed("not base64")),
        lambda: crypto.decrypt(*signed(base64.b64encode(b"\x00" * 48).decode())),
        lambda: crypto.decrypt(*signed(ref_encrypt(KEY, MESSAGE.encode(), "wwother"))),
        lambda: crypto.decrypt(*signed(ref_encrypt(KEY, b"\xff" + MESSAGE.encode(), SUITE_ID))),
        lambda: crypto.decrypt(signature, TIMESTAMP, NONCE, encrypted, receive_ids=["x"]),
        lambda: CallbackCrypto(TOKEN, ENCODING_AES_KEY[:-1] + "!", SUITE_ID),
    ]
    errors = []
    for call in calls:
        with pytest.raises(CallbackCryptoError) as info:
            call()
        errors.append(info.value)
    return errors


def test_exceptions_contain_no_secret_or_plaintext():
    secrets = [TOKEN, ENCODING_AES_KEY, ENCODING_AES_KEY[:-1], KEY.hex(), repr(KEY)[2:-1]]
    secrets += [MESSAGE, "SuiteTicket", "asdfasfdasdfasdf"]

    for exc in _failures():
        rendered = " ".join([str(exc), repr(exc), *map(repr, exc.args)])
        for secret in secrets:
            assert secret not in rendered, type(exc)
        # No chained exception that could carry bytes from the ciphertext/plaintext.
        assert exc.__cause__ is None
        assert exc.__context__ is None


def test_each_failure_has_its_own_class_and_code():
    assert [(type(e), e.code) for e in _failures()] == [
        (InvalidSignature, -40001),
        (InvalidBase64, -40010),
        (InvalidPadding, -40007),
        (ReceiveIdMismatch, -40005),
        (IllegalBuffer, -40008),
        (ReceiveIdMismatch, -40005),
        (InvalidAesKey, -40004),
    ]


def test_repr_does_not_show_token_or_key(crypto):
    assert TOKEN not in repr(crypto)
    assert ENCODING_AES_KEY not in repr(crypto)
    assert SUITE_ID in repr(crypto)


# --- URL verification ------------------------------------------------------------------


def _echostr_with_all_specials(crypto: CallbackCrypto) -> tuple[str, str]:
    """Return (echostr, plaintext) whose base64 contains '+', '/' and '='."""
    for i in itertools.count():
        plaintext = f"echo{i}"
        echostr, _ = crypto.encrypt(plaintext, TIMESTAMP, NONCE)
        if "+" in echostr and "/" in echostr and echostr.endswith("="):
            return echostr, plaintext
    raise AssertionError("unreachable")


def test_url_verification_round_trip_with_special_chars():
    crypto = make_crypto(PROVIDER_CORP_ID)
    echostr, plaintext = _echostr_with_all_specials(crypto)

    assert crypto.verify_url(*signed(echostr)) == plaintext


def test_url_verification_restores_plus_turned_into_space():
    crypto = make_crypto(PROVIDER_CORP_ID)
    echostr, plaintext = _echostr_with_all_specials(crypto)
    signature = ref_sign(TOKEN, TIMESTAMP, NONCE, echostr)

    assert crypto.verify_url(signature, TIMESTAMP, NONCE, echostr.replace("+", " ")) == plaintext


def test_url_verification_accepts_provider_or_suite_id_on_the_command_url():
    # §7.1: command-URL GET may carry the provider corpid or the suite id.
    crypto = make_crypto(SUITE_ID, extra_receive_ids=[PROVIDER_CORP_ID])
    for receive_id in (SUITE_ID, PROVIDER_CORP_ID):
        echostr = ref_encrypt(KEY, b"4938271659102", receive_id)
        assert crypto.verify_url(*signed(echostr)) == "4938271659102"


def test_url_verification_rejects_bad_signature_and_receive_id():
    crypto = make_crypto(PROVIDER_CORP_ID)
    echostr = ref_encrypt(KEY, b"12345", SUITE_ID)

    with pytest.raises(ReceiveIdMismatch):
        crypto.verify_url(*signed(echostr))
    with pytest.raises(InvalidSignature):
        crypto.verify_url("f" * 40, TIMESTAMP, NONCE, echostr)
