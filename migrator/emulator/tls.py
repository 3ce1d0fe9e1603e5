"""A throwaway self-signed certificate so the emulator can serve https on loopback.

Against Meta the executor speaks https; a rehearsal or benchmark over plain http measures a path
production never takes. `throwaway_certificate()` makes a key and a certificate for `localhost`,
127.0.0.1 and ::1, valid for two days, in a fresh private directory (0700, key file 0600) that is
removed when the context exits. Nothing is committed or reused: every run has its own key.

The client trusts that certificate only when told to (`--ca-cert FILE` / MIGRATOR_CA_CERT, see
`migrator.graph.client.tls_context`): verification is never switched off.

The key is made with the `cryptography` package when it is installed, else with the `openssl`
command line tool (Debian's `openssl` package); without either, `TLSSetupError` says so.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

HOSTS = ("localhost",)
ADDRESSES = ("127.0.0.1", "::1")


class TLSSetupError(RuntimeError):
    """No way to make a certificate here (neither `cryptography` nor `openssl`), or it failed."""


@dataclass(frozen=True)
class Certificate:
    cert_file: Path     # PEM certificate: public, what the client is told to trust
    key_file: Path      # PEM private key, mode 0600, in a 0700 directory


def _private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 before anything secret is written into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _with_cryptography(cert: Path, key: Path) -> bool:
    try:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        return False
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "migrator emulator (throwaway)")])
    now = datetime.datetime.now(datetime.timezone.utc)
    san = [x509.DNSName(h) for h in HOSTS] + [x509.IPAddress(ipaddress.ip_address(a)) for a in ADDRESSES]
    c = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(pkey.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=2))
         .add_extension(x509.SubjectAlternativeName(san), critical=False)
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
         .sign(pkey, hashes.SHA256()))
    _private_file(key)
    key.write_bytes(pkey.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    return True


def _with_openssl(cert: Path, key: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        raise TLSSetupError("cannot make a certificate: neither the Python package `cryptography` nor the "
                            "`openssl` command is installed (pip install cryptography, or apt-get install openssl)")
    _private_file(key)
    san = ",".join([f"DNS:{h}" for h in HOSTS] + [f"IP:{a}" for a in ADDRESSES])
    cmd = [exe, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=migrator emulator (throwaway)",
           "-addext", f"subjectAltName={san}", "-addext", "basicConstraints=critical,CA:TRUE"]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise TLSSetupError(f"openssl could not make a certificate: {r.stderr.strip()[-300:]}")
    os.chmod(key, 0o600)


@contextlib.contextmanager
def throwaway_certificate() -> Iterator[Certificate]:
    """A fresh key and self-signed certificate in a private temporary directory, removed at exit."""
    d = Path(tempfile.mkdtemp(prefix="migrator-tls-"))   # mkdtemp: mode 0700
    try:
        cert, key = d / "emulator-cert.pem", d / "emulator-key.pem"
        if not _with_cryptography(cert, key):
            _with_openssl(cert, key)
        yield Certificate(cert, key)
    finally:
        shutil.rmtree(d, ignore_errors=True)


__all__ = ["Certificate", "TLSSetupError", "throwaway_certificate"]
