"""Crypto against fixed vectors worked out from appendix 4-7, not only round trips.

The AES vectors were produced independently with the OpenSSL command line
(`printf TEXT | openssl enc -aes-128-ecb -K <hex of the '0'-padded key> -nosalt`, hex uppercased);
the RSA ciphertext with `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:pkcs1` and then
Base64 made URL-safe without padding, as Java's encodeBase64URLSafeString does.
"""
import re

import pytest
from Crypto.PublicKey import RSA

from sungrow2mqtt.isolarcloud import crypto

# Appendix 7 uses "A123456zA123456z" as the example request key.
KEY = "A123456zA123456z"
PRIVATE_PEM = """-----BEGIN PRIVATE KEY-----
MIICdgIBADANBgkqhkiG9w0BAQEFAASCAmAwggJcAgEAAoGBAK/ETnmkq4J/1581
Ovpe6/dYgTmdxFNOg/J/gCYCc7ESrcgp4btV83tNTdoexH24vEV5/Nfzviu0NPAn
IsUiomeYfh5OG5lFBIwS1OqDqMniww7wr6P2GWwN0uorpHlCgQRLPSYfFAHvlInv
TyuPPzdYvr+FE0P/mTD0rOzR0RXLAgMBAAECgYAA52CD7Z3YKPIh5nMsMGrENddM
RYxp5UB2ccNl7qNLqM3t9pErlnCPFMGuunPGNbn6HXt4XM+AiAexqHHcU6ZEIex2
91+hMJgYJloZy/xifB6jD12T6URbp1G+hgMJvAiK8NmJ6oeOl4cAsHJGfHihwUAf
WgtW7iEz1FIQ1qMYyQJBAN65KemULzp7YhO0xI9PQtbww0tGc/4fCFsA3MM2WZmv
dEMx4raI1aVIYQQVNZW6Esil/LmA7ua+dRfwXZjUXpcCQQDKByCTLJawrpTEcVEw
OUPQegpQmx0YcDHOoAkJDFKAWMyBOQUQ0z83nUb2peGoJgP80agUu19gKQIcoFT0
qxztAkEAi665OIL1M8pZ8l32wKJHGyKYeMdQy9mOlfRugAfAHgDJ+7J3q18aDrTc
E4Fxv9uZGDnxzC2upwxfx4m6SbU3NQJAMGaWukvDal7ZC1sunUQK6CZk1DzlMpam
iB81KvLFzTP5Arh7azWA/rzyZGMHdfZtnCNKhnUBe5M3i04qLFfWXQJAZcjsyJam
Cia4glt7IO2XqXjZkXDWev/P841J80dKIWKpPfSFuA8N0o+TcxVQymaSXzlGrju4
t3MmShRTe+708Q==
-----END PRIVATE KEY-----"""
PUBLIC_B64 = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCvxE55pKuCf9efNTr6Xuv3WIE5ncRTToPyf4AmAnOxEq3IKeG7VfN7TU3aHsR9uLxFefzX874rtDTwJyLFIqJnmH4eThuZRQSMEtTqg6jJ4sMO8K+j9hlsDdLqK6R5QoEESz0mHxQB75SJ708rjz83WL6/hRND/5kw9Kzs0dEVywIDAQAB"
RSA_VECTOR = ("OYx-o28HN_JeW-416HuYjd-HjY1dLi4IpTzshxi6mUpm8Bjlh5f5nu6PCz391pHLLWM7xzqbPcbrWypV7yfsvgrBPSCHD6nE718MHaCyVut4vBVOI0dsrdh8-rifBTUg_XDwve65P1Q54PKD5vwRBF0TqxNqhZKwljOJypWfsYs")

AES_VECTORS = [
    # (plaintext, key, uppercase hex ciphertext)
    ('{"a":1}', KEY, "BCAE6E399B9C79AFC9249934A3372F4F"),
    ('{"api_key_param":{"nonce":"cb360459bd624c6ab15308c4b6847856","timestamp":"1616725497384"},'
     '"appkey":"ABCDEF","login_type":"1"}', KEY,
     "384968ADECD4A73233AE5B489294FFD09D483D8FF607FC4EB920004FE3BA6038B1DD088A301B06B15020F17647"
     "FAF7AA3D1474A90DBA3F323366DF7C031AC9188CE736C54F141012E57AA49A3975E3F024696ED9CC97086769D8"
     "4D2805A4A1855ABC37F7E24BA756CDACFD12E21B37AFCB08BEAF360FA811AA1919199540EB28"),
    ("电站", KEY, "B90E61A18CC95693308E6DB8ADBB3569"),      # UTF-8, not Latin-1
    ("hello", "abc", "084DE6446314803186AA6EF5B99CC8D4"),  # key padded with '0' to 16
    ("", KEY, "E34EBCFE9DF065E96699B535BACCBB3C"),         # PKCS#5: a full block of padding
]


def test_key_is_utf8_padded_with_ascii_zero():
    assert crypto.aes_key_bytes("abc") == b"abc0000000000000"
    assert crypto.aes_key_bytes(KEY) == KEY.encode()
    assert crypto.aes_key_bytes("0123456789abcdefXYZ") == b"0123456789abcdef"


@pytest.mark.parametrize("plaintext,key,expected", AES_VECTORS)
def test_aes_encrypt_matches_fixed_vector(plaintext, key, expected):
    assert crypto.aes_encrypt_hex(plaintext, key) == expected


@pytest.mark.parametrize("plaintext,key,ciphertext", AES_VECTORS)
def test_aes_decrypt_fixed_vector_either_case(plaintext, key, ciphertext):
    assert crypto.aes_decrypt_hex(ciphertext, key) == plaintext
    assert crypto.aes_decrypt_hex(ciphertext.lower(), key) == plaintext


def test_aes_decrypt_with_wrong_key_is_a_crypto_error_without_the_key():
    with pytest.raises(crypto.CryptoError) as info:
        crypto.aes_decrypt_hex(AES_VECTORS[1][2], "wrongkey12345678")
    assert "wrongkey" not in str(info.value)
    with pytest.raises(crypto.CryptoError):
        crypto.aes_decrypt_hex("not hex", KEY)


def test_rsa_fixed_vector_from_openssl_decrypts():
    private = RSA.import_key(PRIVATE_PEM)
    assert crypto.rsa_decrypt(RSA_VECTOR, private) == KEY


def test_rsa_encrypt_is_pkcs1_v15_urlsafe_base64_without_padding():
    encrypted = crypto.rsa_encrypt(KEY, PUBLIC_B64)
    # 1024-bit key: one 128-byte block -> 171 Base64 characters, no '=', no '+' or '/'
    assert len(encrypted) == 171
    assert re.fullmatch(r"[A-Za-z0-9_-]+", encrypted)
    private = RSA.import_key(PRIVATE_PEM)
    assert crypto.rsa_decrypt(encrypted, private) == KEY
    # PKCS#1 v1.5 is randomised: the same key encrypts differently every time
    assert crypto.rsa_encrypt(KEY, PUBLIC_B64) != encrypted


def test_rsa_long_plaintext_is_split_in_k_minus_11_blocks():
    private = RSA.import_key(PRIVATE_PEM)
    text = "x" * 200  # more than 128 - 11 bytes -> two blocks
    encrypted = crypto.rsa_encrypt(text, PUBLIC_B64)
    assert len(crypto._b64url_decode(encrypted)) == 256
    assert crypto.rsa_decrypt(encrypted, private) == text


def test_public_key_forms_accepted():
    pem = RSA.import_key(PRIVATE_PEM).public_key().export_key().decode()
    urlsafe = PUBLIC_B64.replace("+", "-").replace("/", "_").rstrip("=")
    wrapped = "\n".join(PUBLIC_B64[i:i + 64] for i in range(0, len(PUBLIC_B64), 64))
    for form in (PUBLIC_B64, pem, urlsafe, wrapped):
        assert crypto.load_public_key(form).n == RSA.import_key(PRIVATE_PEM).n
    with pytest.raises(crypto.CryptoError):
        crypto.load_public_key("definitely not a key")


def test_public_key_base64_is_x509_der():
    private = RSA.import_key(PRIVATE_PEM)
    assert crypto.public_key_base64(private) == PUBLIC_B64


def test_nonce_and_key_shapes():
    nonces = {crypto.new_nonce() for _ in range(200)}
    assert len(nonces) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9]{32}", n) for n in nonces)
    assert re.fullmatch(r"[A-Za-z0-9]{16}", crypto.new_aes_key())


def test_the_crypto_library_is_loaded_only_when_encryption_is_configured():
    """Plain use (the service's whole import graph and a plain transport) never imports the
    crypto library; an encrypted transport does."""
    import subprocess
    import sys
    public = crypto.public_key_base64(RSA.import_key(PRIVATE_PEM))
    script = (
        "import sys\n"
        "import sungrow2mqtt.cli, sungrow2mqtt.service\n"
        "from sungrow2mqtt.isolarcloud.transport import Transport\n"
        "Transport('eu', 'a' * 32, 'b' * 32)\n"
        "print('plain', any(m.startswith('Crypto') for m in sys.modules))\n"
        f"Transport('eu', 'a' * 32, 'b' * 32, rsa_public_key={public!r})\n"
        "print('encrypted', any(m.startswith('Crypto') for m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["plain", "False", "encrypted", "True"]


def test_crypto_errors_are_the_projects_errors():
    from sungrow2mqtt.errors import Sungrow2MqttError
    with pytest.raises(Sungrow2MqttError):
        crypto.aes_decrypt_hex("not hex", KEY)
    assert issubclass(crypto.CryptoError, ValueError)
