"""The encrypted-call primitives of the Open API document, appendix 4-7.

* RSA (appendix 4): PKCS#1 v1.5 with the X.509 public key the portal hands out, data split into
  blocks of ``key bytes - 11``, output URL-safe Base64 without padding
  (Java's ``Base64.encodeBase64URLSafeString``).
* AES (appendix 5/6): AES-128-ECB with PKCS#5 padding; the key is the UTF-8 bytes of the random
  key, cut or padded with ``'0'`` to 16 bytes; ciphertext as uppercase hex.
* ``api_key_param`` (appendix 7): a fresh 32-character alphanumeric nonce and a UTC millisecond
  timestamp in every request.

The private-key half (:func:`rsa_decrypt`) exists for the simulator, which plays the server.
The crypto library is imported by the functions that need it, so that plain (unencrypted) use
never loads it.
"""
from __future__ import annotations

import base64
import secrets
import string
from typing import TYPE_CHECKING, Union

from sungrow2mqtt.errors import Sungrow2MqttError

if TYPE_CHECKING:
    from Crypto.PublicKey.RSA import RsaKey

ALPHANUMERIC = string.ascii_letters + string.digits
AES_KEY_LENGTH = 16
NONCE_LENGTH = 32


class CryptoError(Sungrow2MqttError, ValueError):
    """Ciphertext or key material that cannot be used; never carries the key itself."""


def random_alphanumeric(length: int) -> str:
    """A cryptographically random string of letters and digits."""
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def new_aes_key() -> str:
    """A fresh 16-character key for one request (the ``x-random-secret-key`` plaintext)."""
    return random_alphanumeric(AES_KEY_LENGTH)


def new_nonce() -> str:
    """A fresh 32-character nonce for ``api_key_param``."""
    return random_alphanumeric(NONCE_LENGTH)


def aes_key_bytes(key: str) -> bytes:
    """Appendix 5 ``getSecretKey``: UTF-8 bytes, cut to 16 or padded with ``'0'``."""
    return key.encode("utf-8")[:AES_KEY_LENGTH].ljust(AES_KEY_LENGTH, b"0")


def aes_encrypt_hex(plaintext: str, key: str) -> str:
    """Appendix 5: AES-128-ECB/PKCS#5 of the UTF-8 text, as uppercase hex."""
    from Crypto.Cipher import AES
    from Crypto.Util.Padding import pad
    cipher = AES.new(aes_key_bytes(key), AES.MODE_ECB)
    return cipher.encrypt(pad(plaintext.encode("utf-8"), AES.block_size)).hex().upper()


def aes_decrypt_hex(ciphertext_hex: str, key: str) -> str:
    """Appendix 6: the inverse of :func:`aes_encrypt_hex` (hex digits of either case)."""
    from Crypto.Cipher import AES
    from Crypto.Util.Padding import unpad
    try:
        data = bytes.fromhex(ciphertext_hex.strip())
        cipher = AES.new(aes_key_bytes(key), AES.MODE_ECB)
        return unpad(cipher.decrypt(data), AES.block_size).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CryptoError(f"AES decryption failed: {type(exc).__name__}") from None


def load_public_key(text: str) -> RsaKey:
    """Read the portal's RSA public key: Base64 X.509 (standard or URL-safe) or PEM."""
    from Crypto.PublicKey import RSA
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = RSA.import_key(text)
        else:
            compact = "".join(text.split()).replace("-", "+").replace("_", "/")
            key = RSA.import_key(base64.b64decode(compact + "=" * (-len(compact) % 4)))
    except (ValueError, IndexError, TypeError) as exc:
        raise CryptoError(f"not a usable RSA public key ({type(exc).__name__})") from None
    if key.has_private():
        key = key.public_key()
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rsa_encrypt(plaintext: str, public_key: Union[str, RsaKey]) -> str:
    """Appendix 4 ``publicEncrypt``: PKCS#1 v1.5 in ``k - 11`` byte blocks, URL-safe Base64."""
    from Crypto.Cipher import PKCS1_v1_5
    key = load_public_key(public_key) if isinstance(public_key, str) else public_key
    cipher = PKCS1_v1_5.new(key)
    block = key.size_in_bytes() - 11
    data = plaintext.encode("utf-8")
    out = b"".join(cipher.encrypt(data[i:i + block]) for i in range(0, len(data), block))
    return _b64url(out)


def rsa_decrypt(ciphertext_b64url: str, private_key: RsaKey) -> str:
    """Server side of :func:`rsa_encrypt` (used by the simulator): ``k``-byte blocks."""
    from Crypto.Cipher import PKCS1_v1_5
    try:
        data = _b64url_decode(ciphertext_b64url)
    except ValueError:
        raise CryptoError("RSA ciphertext is not URL-safe Base64") from None
    size = private_key.size_in_bytes()
    if not data or len(data) % size:
        raise CryptoError("RSA ciphertext length is not a multiple of the key size")
    cipher = PKCS1_v1_5.new(private_key)
    sentinel = object()
    parts = []
    for i in range(0, len(data), size):
        part = cipher.decrypt(data[i:i + size], sentinel)
        if part is sentinel:
            raise CryptoError("RSA decryption failed")
        parts.append(part)
    try:
        return b"".join(parts).decode("utf-8")  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise CryptoError("RSA plaintext is not UTF-8") from None


def public_key_base64(private_key: RsaKey) -> str:
    """The X.509 (SubjectPublicKeyInfo) DER of a key, standard Base64, as the portal shows it."""
    return base64.b64encode(private_key.public_key().export_key(format="DER")).decode("ascii")
