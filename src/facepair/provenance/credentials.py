"""C2PA content credentials: a signed manifest, embedded in JPEG, PNG and MP4/MOV outputs, that
says the media was made by a trained algorithm (c2pa-python, offline).

The signing key and certificate are made on first use and kept in the user's config folder
($FACEPAIR_CONFIG_DIR, else $XDG_CONFIG_HOME/facepair, else ~/.config/facepair). The C2PA SDK
refuses a self-signed *signing* certificate, so the folder holds a self-signed local root and a
signing certificate issued by it; the manifest carries both. Readers will call such a manifest
valid (the signature and hashes check out) but not trusted (the root is on no trust list).

Beside them, the installation's secret watermark key (`watermark.key`: 32 random bytes written
as 64 hex digits, mode 600), made on first use and never replaced: the watermark's installation
mark is drawn from it (watermark.py), and `verify --key FILE` checks another installation's.
"""
from __future__ import annotations

import datetime
import io
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import FacepairError
from ..media.files import atomic_write_bytes, temp_name

FORMATS = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png",
           ".webp": "image/webp", ".tif": "image/tiff", ".tiff": "image/tiff",
           ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime"}
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
KEY_FILE, CHAIN_FILE = "c2pa-signer.key", "c2pa-signer-chain.pem"
WATERMARK_KEY_FILE = "watermark.key"
WATERMARK_KEY_BYTES = 32


def config_dir() -> Path:
    """The folder of the signing identity and the watermark key. One that is a file, or lies
    under one, is a user error naming it (it read "File exists" / "Not a directory")."""
    if os.environ.get("FACEPAIR_CONFIG_DIR"):
        folder, named = Path(os.environ["FACEPAIR_CONFIG_DIR"]), "FACEPAIR_CONFIG_DIR"
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
        folder, named = Path(base) / "facepair", "facepair's config folder"
    for part in (folder, *folder.parents):
        if part.exists():
            if not part.is_dir():
                raise FacepairError(f"{named} {folder} cannot be a folder: {part} is a file")
            break
    return folder


def supported(path) -> bool:
    return Path(path).suffix.lower() in FORMATS


def manifest(title: str) -> dict:
    return {
        "claim_generator_info": [{"name": "facepair", "version": __version__}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": SOURCE_TYPE,
            "softwareAgent": {"name": "facepair", "version": __version__},
            "description": "face swapped by a trained algorithm (two autoencoders that share "
                           "one encoder); the face in this media is synthetic"}]}}],
    }


# --- the signing identity --------------------------------------------------------------------
def _make_identity(folder: Path) -> None:
    """A self-signed local root (CA) and an ES256 signing certificate issued by it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "facepair (local, self-issued)")])

    def usage(sign: bool):
        return x509.KeyUsage(digital_signature=sign, key_cert_sign=not sign, crl_sign=not sign,
                             content_commitment=False, key_encipherment=False, data_encipherment=False,
                             key_agreement=False, encipher_only=False, decipher_only=False)

    now = datetime.datetime.now(datetime.timezone.utc)
    root_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def cert(subject, issuer, public, signing_key, sign: bool, extra=()):
        b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
             .serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1))
             .not_valid_after(now + datetime.timedelta(days=3650))
             .add_extension(x509.BasicConstraints(ca=not sign, path_length=None if sign else 0), critical=True)
             .add_extension(usage(sign), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False))
        for ext in extra:
            b = b.add_extension(ext, critical=False)
        return b.sign(signing_key, hashes.SHA256())

    root_name = name("facepair local root")
    root = cert(root_name, root_name, root_key.public_key(), root_key, sign=False)
    leaf = cert(name("facepair signer"), root_name, key.public_key(), root_key, sign=True, extra=(
        x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
        x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key())))
    pem = serialization.Encoding.PEM
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(folder / CHAIN_FILE, leaf.public_bytes(pem) + root.public_bytes(pem))
    atomic_write_bytes(folder / KEY_FILE, key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()), mode=0o600)


def ensure_identity() -> Path:
    """The signing identity's folder, made on first use. An existing key or chain is never
    replaced: one half without the other is a user error naming the missing file. Two first
    runs at once make one identity (a lock file serialises them)."""
    folder = config_dir()
    key, chain = folder / KEY_FILE, folder / CHAIN_FILE
    watermark_key()                              # made, or checked, first: a bad one stops here
    if not (key.exists() and chain.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / ".identity.lock", "a") as lock:
            try:
                import fcntl
                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:                  # no fcntl (Windows): no lock
                pass
            if not key.exists() and not chain.exists():
                _make_identity(folder)
        for have, missing in ((key, chain), (chain, key)):
            if have.exists() and not missing.exists():
                raise FacepairError(f"content-credentials identity incomplete: {missing} is missing "
                                    f"(restore it, or move {have} away to make a new identity)")
    _check_identity(key, chain)
    return folder


def _check_identity(key: Path, chain: Path) -> None:
    """The signing key and its chain, checked before any work: a key that is damaged, unreadable,
    not ES256 (P-256) or not the first certificate's was found only when the first output was
    signed (a warning, and a summary claiming the manifest all the same)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    fix = f"(restore it, or move {key.name} and {chain.name} away to make a new identity)"
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), None)
        certs = x509.load_pem_x509_certificates(chain.read_bytes())
    except OSError as e:
        raise FacepairError(f"cannot read the content-credentials identity: {e.filename}: "
                            f"{e.strerror or e}") from None
    except (ValueError, TypeError):
        raise FacepairError(f"content-credentials identity unusable: {key} and {chain} must be "
                            f"a PEM private key and its PEM certificate chain {fix}") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise FacepairError(f"content-credentials key {key} is not an ES256 (EC P-256) key {fix}")
    if certs[0].public_key().public_numbers() != private.public_key().public_numbers():
        raise FacepairError(f"content-credentials key {key} is not the key of the first "
                            f"certificate in {chain} {fix}")


# --- the installation's watermark key --------------------------------------------------------
def watermark_key(create: bool = True) -> bytes | None:
    """This installation's secret watermark key, made on first use (None when there is none yet
    and `create` is False). A malformed or unreadable key file is a user error, never replaced."""
    path = config_dir() / WATERMARK_KEY_FILE
    if not path.exists() and not path.is_symlink():
        if not create:
            return None
        _make_watermark_key(path)
    return read_watermark_key(path)


def _make_watermark_key(path: Path) -> None:
    """32 random bytes as hex, mode 600, written to a temp file and linked into place: the key
    appears whole or not at all, and an existing one (another process's, made at the same
    moment) is never replaced."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(WATERMARK_KEY_BYTES) + "\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass                                 # another first run made it: theirs stands
            except OSError:                          # no hard links here: exclusive create
                try:
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                except FileExistsError:
                    return
                with os.fdopen(fd, "w") as f:
                    f.write(tmp.read_text())
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        raise FacepairError(f"cannot make the watermark key {path}: {e.strerror or e}") from None


def read_watermark_key(path) -> bytes:
    """A watermark key file (this installation's, or another's given to `verify --key`): 64 hex
    digits. Missing, unreadable or malformed: a one-line user error."""
    path = Path(path)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise FacepairError(f"watermark key file not found: {path}") from None
    except OSError as e:
        raise FacepairError(f"cannot read the watermark key file {path}: {e.strerror or e}") from None
    try:
        key = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        key = b""
    if len(key) != WATERMARK_KEY_BYTES:
        raise FacepairError(f"not a facepair watermark key: {path} (want {2 * WATERMARK_KEY_BYTES} "
                            f"hex digits, as facepair writes in {WATERMARK_KEY_FILE})")
    return key


def _signer():
    import c2pa
    folder = ensure_identity()
    info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, (folder / CHAIN_FILE).read_bytes(),
                               (folder / KEY_FILE).read_bytes(), None)
    return c2pa.Signer.from_info(info)


def _builder(title: str):
    import c2pa
    settings = c2pa.Settings.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    return c2pa.Builder(manifest(title), context=c2pa.Context(settings))


# --- sign and read ---------------------------------------------------------------------------
def sign_bytes(data: bytes, suffix: str, title: str) -> bytes:
    """The encoded image `data` with a signed manifest embedded."""
    out = io.BytesIO()
    with _signer() as signer, _builder(title) as b:
        b.sign(signer, FORMATS[suffix.lower()], io.BytesIO(data), out)
    return out.getvalue()


def sign_file(path: Path, title: str) -> None:
    """Embed a signed manifest into the file at `path`, atomically (streamed, not held in memory)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{temp_name(path.name)}.", suffix=f".c2pa{path.suffix}")
    tmp = Path(tmp)                 # a new file of a name of its own: nothing planted is followed
    try:
        with _signer() as signer, _builder(title) as b, \
                open(path, "rb") as src, open(fd, "w+b") as dst:
            b.sign(signer, FORMATS[path.suffix.lower()], src, dst)
        shutil.copymode(path, tmp)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class Credentials:
    generator: str          # the claim generator's name
    source_type: str        # the digitalSourceType of the creating action ('' when none)
    state: str              # the SDK's validation state: Valid, Trusted or Invalid

    @property
    def synthetic(self) -> bool:
        return "trainedalgorithmic" in self.source_type.lower()


def read(path, kind: str | None = "") -> Credentials | None:
    """The file's active C2PA manifest, or None when it has none (or the format takes none).
    `kind`: the media type of what the file holds, where its name may not say (None: a format
    that takes no manifest); by default, the name's."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower()) if kind == "" else kind
    if kind is None:
        return None
    import c2pa
    # nothing fetched from the network: a file without a manifest of its own can name a remote
    # one in its XMP (dcterms:provenance), and c2pa fetched it by default: the sender learnt the
    # file was checked and from where, could make the check wait or take memory, or have the
    # machine request an address of its own network (certificate status too)
    offline = c2pa.Context(c2pa.Settings.from_dict({"verify": {"remote_manifest_fetch": False,
                                                               "ocsp_fetch": False}}))
    try:
        with open(path, "rb") as f, c2pa.Reader(kind, f, context=offline) as r:
            active = r.get_active_manifest() or {}
            state = r.get_validation_state() or "unknown"
    except c2pa.C2paError:
        return None
    gen = (active.get("claim_generator_info") or [{}])[0].get("name", "")
    source = ""
    for a in active.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            for act in a.get("data", {}).get("actions", []):
                source = source or act.get("digitalSourceType", "")
    return Credentials(gen, source, state)
