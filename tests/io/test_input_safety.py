"""Hostile inputs: a data file never reads other files, special files never block, sizes are bounded.

Each test rebuilds one attack from the security review:

* HDF5 (NetCDF-4 ``.nc``, ``.hspy``) external storage, external links and virtual datasets, and
  ``.zspy`` Zarr stores with symlinked chunks or zip entries leaving the archive, made
  ``sp.read`` return the bytes of any file the user could read (the cache HMAC key was
  published in a report). They are refused before any data is read, and the secret bytes never
  appear in the error, in a measurement or on the CLI's stdout.
* inputs resolving to specproc's private cache key (or its folder) are refused;
* FIFOs, devices and sockets (the input, or a file inside an input folder) are refused before
  anything opens them (a FIFO hung ``sp.read``; ``/dev/zero`` never ends);
* sizes count what symlinks point to (a Bruker ``fid`` linked to a 3 GiB file), each target once;
* compressed containers are refused on their *decoded* size (a 4.8 MB gzip NetCDF used 4.78 GB);
* energy axes with dispersion 0 or non-finite calibration are refused (not read as 1 eV/channel).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import specproc as sp
import specproc.io as spio
from specproc.core.errors import ReaderError
from specproc.core.measurement import new_measurement

h5py = pytest.importorskip("h5py")

#: what an attacker wants: 32 bytes that must never come out of specproc
SECRET = b"TOP-SECRET-KEY-0123456789abcdef!"
SPECPROC_CLI = Path(sys.executable).parent / "specproc"


@pytest.fixture
def secret(tmp_path):
    """A file holding :data:`SECRET` (stands for ``~/.cache/specproc/cache.key``) outside the data."""
    d = tmp_path / "private"
    d.mkdir()
    p = d / "cache.key"
    p.write_bytes(SECRET)
    return p


def _leaks(obj) -> bool:
    """True if the secret bytes (raw, or as the repr/hex of an array) occur in ``obj``."""
    if isinstance(obj, np.ndarray):
        return SECRET in np.ascontiguousarray(obj).tobytes()
    text = obj if isinstance(obj, (bytes, str)) else str(obj)
    if isinstance(text, str):
        text = text.encode("utf-8", "replace")
    return SECRET in text or SECRET.hex().encode() in text or SECRET[:8] in text


def _refused(path, match: str, **kw) -> ReaderError:
    with pytest.raises(ReaderError, match=match) as exc:
        sp.read(path, **kw)
    # the error names the input, or the entry of its (experiment) folder that is refused
    assert str(Path(path).parent) in str(exc.value)
    assert not _leaks(str(exc.value))
    return exc.value


# ------------------------------------------------------------------ file builders
def _afm_nc(path: Path) -> Path:
    """A valid NetCDF AFM map (``specproc afm`` input) written by ``sp.save``."""
    rng = np.random.default_rng(0)
    x = (np.arange(8) + 0.5) * 1e-7
    m = new_measurement(rng.normal(0, 1e-9, (1, 8, 8)), {"channel": (np.array(["Height"], dtype=object), ""),
                                                         "y": (x, "m"), "x": (x, "m")},
                        technique="afm", units="m", signal_type="map", sample="map")
    return sp.save(m, path)


def _replace_measurement(path: Path, make) -> None:
    """Replace the ``measurement`` variable of a saved NetCDF by ``make(f, shape, dtype)`` (h5py),
    keeping its netCDF dimension scales and attributes, as an attacker editing the file would."""
    with h5py.File(path, "a") as f:
        old = f["measurement"]
        shape = old.shape
        attrs = {k: v for k, v in old.attrs.items() if k not in ("DIMENSION_LIST", "_FillValue")}
        dims = [old.dims[i][0].name.lstrip("/") for i in range(len(shape))]
        del f["measurement"]
        ds = make(f, shape)
        if isinstance(ds, h5py.Dataset):
            for k, v in attrs.items():
                ds.attrs[k] = v
            for i, n in enumerate(dims):
                ds.dims[i].attach_scale(f[n])


def _nc_external_storage(tmp_path, secret) -> Path:
    p = _afm_nc(tmp_path / "external.nc")
    # 1 x 8 x 8 float32 = 256 bytes: the values are the key's bytes, then whatever follows it
    _replace_measurement(p, lambda f, shape: f.create_dataset("measurement", shape=shape, dtype="<f4",
                                                              external=[(str(secret), 0, 256)]))
    return p


def _nc_external_link(tmp_path, secret) -> Path:
    src = tmp_path / "holder.h5"
    with h5py.File(src, "w") as g:
        g["data"] = np.frombuffer(SECRET * 8, dtype="<f4").reshape(1, 8, 8)
    p = _afm_nc(tmp_path / "extlink.nc")
    _replace_measurement(p, lambda f, shape: f.__setitem__("measurement", h5py.ExternalLink(str(src), "/data")))
    return p


def _nc_virtual(tmp_path, secret) -> Path:
    src = tmp_path / "vsource.h5"
    with h5py.File(src, "w") as g:
        g["data"] = np.frombuffer(SECRET * 8, dtype="<f4").reshape(1, 8, 8)
    p = _afm_nc(tmp_path / "virtual.nc")

    def make(f, shape):
        layout = h5py.VirtualLayout(shape=shape, dtype="<f4")
        layout[...] = h5py.VirtualSource(str(src), "data", shape=shape)
        return f.create_virtual_dataset("measurement", layout)

    _replace_measurement(p, make)
    return p


def _eels_signal(data: np.ndarray, scale: float = 0.1, offset: float = 150.0) -> dict:
    """A RosettaSciIO signal dict (what HyperSpy saves) of an EELS spectrum or spectrum image."""
    nav = [{"name": n, "scale": 2.0, "offset": 0.0, "size": s, "units": "nm", "navigate": True}
           for n, s in zip(("y", "x"), data.shape[:-1])]
    return {"data": data, "axes": nav + [{"name": "Energy loss", "scale": scale, "offset": offset,
                                          "size": data.shape[-1], "units": "eV", "navigate": False}],
            "metadata": {"General": {"title": "s"}, "Signal": {"signal_type": "EELS"}},
            "original_metadata": {}, "package_info": {"name": "hyperspy", "version": "2.0"},
            "attributes": {"_lazy": False}, "learning_results": {}, "models": {}, "tmp_parameters": {}}


def _write_rsciio(module: str, path: Path, signal: dict, **kw) -> Path:
    import importlib

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr's NestedDirectoryStore deprecation
        importlib.import_module(f"rsciio.{module}").file_writer(str(path), signal, **kw)
    return path


def _spectrum(n: int = 200) -> np.ndarray:
    E = 150 + 0.1 * np.arange(n)
    return (1e4 * (E / 150.0) ** -3 + 50 * np.exp(-((E - 160) / 0.5) ** 2)).astype("f4")


# ------------------------------------------------------------------ 1. HDF5 / NetCDF never reads other files
@pytest.mark.parametrize("build, reason", [(_nc_external_storage, "external storage"),
                                           (_nc_external_link, "external link"),
                                           (_nc_virtual, "virtual dataset")])
def test_netcdf_referring_to_other_files_is_refused(tmp_path, secret, build, reason):
    p = build(tmp_path, secret)
    _refused(p, reason)
    _refused(p, reason, reader="netcdf")


def test_netcdf_external_storage_did_leak_without_the_check(tmp_path, secret):
    """The attack is real: h5py/xarray return the secret's bytes when nothing checks the file."""
    import xarray as xr

    p = _nc_external_storage(tmp_path, secret)
    with xr.open_dataset(p, engine="h5netcdf") as ds:
        assert _leaks(ds["measurement"].values)


def test_a_clean_netcdf_still_reads(tmp_path):
    p = _afm_nc(tmp_path / "clean.nc")
    assert sp.read(p).shape == (1, 8, 8)
    assert spio.base.check_hdf5_self_contained(p) >= 8 * 8 * 8


def test_hspy_with_external_storage_is_refused(tmp_path, secret):
    p = _write_rsciio("hspy", tmp_path / "ext.hspy", _eels_signal(_spectrum()))
    with h5py.File(p, "a") as f:
        grp = next(iter(f["Experiments"].values()))
        n = grp["data"].shape[0]
        del grp["data"]
        grp.create_dataset("data", shape=(n,), dtype="<f4", external=[(str(secret), 0, 4 * n)])
    _refused(p, "external storage")


def test_hspy_with_external_link_is_refused(tmp_path, secret):
    src = tmp_path / "holder.h5"
    with h5py.File(src, "w") as g:
        g["data"] = np.frombuffer(SECRET * 25, dtype="<f4")
    p = _write_rsciio("hspy", tmp_path / "link.hspy", _eels_signal(_spectrum()))
    with h5py.File(p, "a") as f:
        grp = next(iter(f["Experiments"].values()))
        del grp["data"]
        grp["data"] = h5py.ExternalLink(str(src), "/data")
    _refused(p, "external link")


def test_zspy_with_a_symlinked_chunk_is_refused(tmp_path, secret):
    p = _write_rsciio("zspy", tmp_path / "s.zspy", _eels_signal(_spectrum()))
    chunks = [Path(d) / f for d, _, fs in os.walk(p) for f in fs if not f.startswith(".")]
    assert chunks
    chunks[0].unlink()
    chunks[0].symlink_to(secret)
    _refused(p, "symbolic link")
    assert sp.read(_write_rsciio("zspy", tmp_path / "ok.zspy", _eels_signal(_spectrum()))).shape == (200,)


def test_zspy_with_a_symlinked_subfolder_is_refused(tmp_path, secret):
    p = _write_rsciio("zspy", tmp_path / "s.zspy", _eels_signal(_spectrum()))
    (p / "elsewhere").symlink_to(secret.parent, target_is_directory=True)
    _refused(p, "symbolic link")


@pytest.mark.parametrize("entry", ["../../escape", "/abs/path", "symlink"])
def test_zipped_zspy_with_escaping_or_link_entries_is_refused(tmp_path, secret, entry):
    folder = _write_rsciio("zspy", tmp_path / "src.zspy", _eels_signal(_spectrum()))
    z = tmp_path / "zipped.zspy"
    with zipfile.ZipFile(z, "w") as zf:
        for d, _, fs in os.walk(folder):
            for f in fs:
                zf.write(Path(d) / f, str((Path(d) / f).relative_to(folder)))
        if entry == "symlink":
            info = zipfile.ZipInfo("Experiments/s/data/link")
            info.external_attr = (0o120777 << 16)
            zf.writestr(info, str(secret))
        else:
            zf.writestr(entry, b"x")
    _refused(z, "symbolic link" if entry == "symlink" else "absolute or '..'")


@pytest.mark.parametrize("how", ["symlink", "hardlink", "inside"])
def test_inputs_resolving_to_the_cache_key_are_refused(tmp_path, monkeypatch, how):
    """specproc's own key (default folder) and a key named by $SPECPROC_CACHE_KEY_FILE."""
    cache = tmp_path / "xdg"
    (cache / "specproc").mkdir(parents=True)
    key = cache / "specproc" / "cache.key"
    key.write_bytes(SECRET)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("SPECPROC_CACHE_KEY_FILE", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    if how == "symlink":
        (data / "key.xy").symlink_to(key)
        target = data / "key.xy"
    elif how == "hardlink":
        os.link(key, data / "key.xy")
        target = data / "key.xy"
    else:
        target = cache / "specproc" / "spectrum.xy"
        target.write_text("10 1\n20 2\n30 3\n")
    _refused(target, "private cache key folder")
    # a folder input holding a link to the key (e.g. a Bruker experiment whose acqus is the key)
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "acqus").symlink_to(key)
    (exp / "fid").write_bytes(b"\0" * 64)
    _refused(exp, "private cache key folder")
    _refused(exp / "fid", "private cache key folder")   # the reader would read acqus beside it
    # the key named by $SPECPROC_CACHE_KEY_FILE: the file is refused, its (user-chosen) folder is not
    group = tmp_path / "group"
    group.mkdir()
    gkey = group / "team.key"
    gkey.write_bytes(SECRET)
    monkeypatch.setenv("SPECPROC_CACHE_KEY_FILE", str(gkey))
    (data / "team.jdx").symlink_to(gkey)
    _refused(data / "team.jdx", "private cache key folder")
    assert gkey in spio._secret_paths()[0] and key.parent in spio._secret_paths()[1]


# ------------------------------------------------------------------ the CLI, as the attacker used it
def _cli(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    if not SPECPROC_CLI.exists():
        pytest.skip(f"{SPECPROC_CLI} not installed")
    return subprocess.run([str(SPECPROC_CLI), *map(str, args)], capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def test_cli_afm_on_an_external_storage_netcdf_fails_without_the_secret(tmp_path, secret):
    p = _nc_external_storage(tmp_path, secret)
    r = _cli("afm", p, "--json")
    assert r.returncode != 0
    assert not _leaks(r.stdout) and not _leaks(r.stderr)
    entries = json.loads(r.stdout)
    assert "external storage" in entries[0]["error"] and entries[0]["file"].endswith("external.nc")


def test_cli_eels_on_a_symlinked_zspy_fails_without_the_secret(tmp_path, secret):
    p = _write_rsciio("zspy", tmp_path / "s.zspy", _eels_signal(_spectrum()))
    chunk = next(Path(d) / f for d, _, fs in os.walk(p) for f in fs if not f.startswith("."))
    chunk.unlink()
    chunk.symlink_to(secret)
    r = _cli("eels", p, "--json")
    assert r.returncode != 0 and not _leaks(r.stdout)
    assert "symbolic link" in json.loads(r.stdout)[0]["error"]


# ------------------------------------------------------------------ 2. special files and symlinks
def _run_python(code: str, env=None, timeout=20) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter with a timeout: a read that blocks fails the test, not pytest."""
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading blocked for more than {timeout} s")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_fifo_inputs_are_refused_without_blocking(tmp_path):
    fifo = tmp_path / "spectrum.xy"
    os.mkfifo(fifo)
    exp = tmp_path / "exp" / "1"       # a Bruker experiment whose fid is a FIFO
    exp.mkdir(parents=True)
    (exp / "acqus").write_text("##TITLE= x\n##$TD= 8\n##END=\n")
    os.mkfifo(exp / "fid")
    (tmp_path / "linked.jdx").symlink_to(fifo)
    exp2 = _bruker_experiment(tmp_path / "exp2" / "1")   # a real experiment with a FIFO beside its fid
    os.mkfifo(exp2 / "pulseprogram")
    r = _run_python(f"""
        import specproc as sp
        from pathlib import Path
        from specproc.io.base import head_bytes
        assert head_bytes(Path({str(fifo)!r}), 16) == b""   # sniffing never opens it
        for p in ({str(fifo)!r}, {str(tmp_path / 'linked.jdx')!r}, {str(exp)!r}, {str(exp / 'fid')!r},
                  {str(exp2 / 'fid')!r}):
            for reader in (None, "xrd-text", "bruker"):
                try:
                    sp.read(p, reader=reader)
                except sp.ReaderError as e:
                    print("REFUSED", e)
                else:
                    print("READ", p)
    """)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 15 and all(ln.startswith("REFUSED") for ln in lines), r.stdout
    assert all("not a regular file (FIFO/device)" in ln for ln in lines[:12]), r.stdout
    # exp2/fid: refused as the FIFO beside it when read as a Bruker experiment; as text it is not text
    assert all("exp2/1/pulseprogram: not a regular file (FIFO/device)" in lines[i] for i in (12, 14)), r.stdout


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_dev_zero_linked_as_data_files_is_refused_quickly(tmp_path):
    for ext in (".xy", ".jdx", ".sxm", ".spc", ".vms", ".nc", ".hspy", ".gwy", ".dm3"):
        (tmp_path / f"zero{ext}").symlink_to("/dev/zero")
    r = _run_python(f"""
        import time
        from pathlib import Path
        import specproc as sp
        from specproc.io.gwyddion import GwyddionReader
        from specproc.io.nanonis import NanonisReader
        from specproc.io.spc import SpcReader
        d = Path({str(tmp_path)!r})
        t = time.perf_counter()
        for p in sorted(d.iterdir()):
            try:
                sp.read(p)
            except sp.ReaderError as e:
                print("REFUSED", e)
        for R, ext in ((NanonisReader, ".sxm"), (SpcReader, ".spc"), (GwyddionReader, ".gwy")):
            try:   # the readers themselves, called directly (require_file), not only sp.read
                R().read(d / ("zero" + ext))
            except sp.ReaderError as e:
                print("REFUSED", e)
        print("SECONDS", time.perf_counter() - t)
    """)
    assert r.returncode == 0, r.stderr
    refused = [ln for ln in r.stdout.splitlines() if ln.startswith("REFUSED")]
    assert len(refused) == 12 and all("not a regular file (FIFO/device)" in ln for ln in refused), r.stdout
    assert float(r.stdout.split("SECONDS")[1]) < 5


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        fh.truncate(size)  # no disk blocks: a hole of ``size`` bytes
    return path


def _bruker_experiment(d: Path) -> Path:
    from specproc.testing.nmr_synth import write_bruker_experiment

    comp = [dict(name="A", center_ppm=1.0, fwhm_ppm=2.0, area_fraction=1.0, fraction_lorentz=0.5)]
    write_bruker_experiment(d, comp, nucleus="1H", bf1_mhz=400.13, sw_hz=50_000.0, td=1024, sample="S", seed=2)
    return d


def test_symlinked_fid_counts_as_its_3_gib_target(tmp_path):
    exp = _bruker_experiment(tmp_path / "S" / "1")
    big = _sparse(tmp_path / "huge.bin", 3 << 30)
    (exp / "fid").unlink()
    (exp / "fid").symlink_to(big)
    assert spio.input_size(exp) > 3 << 30
    for p in (exp, exp / "fid"):
        _refused(p, "larger than the 2,048 MiB limit")


def test_a_target_linked_twice_counts_once(tmp_path):
    exp = _bruker_experiment(tmp_path / "S" / "1")
    own = spio.input_size(exp)
    big = _sparse(tmp_path / "big.bin", 1536 << 20)
    (exp / "a.bin").symlink_to(big)
    (exp / "b.bin").symlink_to(big)
    os.link(big, exp / "c.bin")
    (exp / "loop").symlink_to(exp, target_is_directory=True)   # a loop is walked once
    assert spio.input_size(exp) == own + (1536 << 20)
    assert sp.read(exp).attrs["signal_type"] == "fid"          # 1.5 GiB + the experiment < 2 GiB


def test_regular_3_gib_fid_is_refused_before_reading(tmp_path):
    exp = _bruker_experiment(tmp_path / "S" / "1")
    (exp / "fid").unlink()
    _sparse(exp / "fid", 3 << 30)
    _refused(exp, "larger than")


def test_limit_from_the_environment_applies_to_link_targets(tmp_path):
    exp = _bruker_experiment(tmp_path / "S" / "1")
    big = _sparse(tmp_path / "big.bin", 8 << 20)
    (exp / "fid").unlink()
    (exp / "fid").symlink_to(big)
    r = _run_python(f"""
        import specproc as sp
        try:
            sp.read({str(exp)!r})
        except sp.ReaderError as e:
            print(e)
    """, env={"SPECPROC_MAX_INPUT_BYTES": str(4 << 20)})
    assert "larger than the 4 MiB limit" in r.stdout, (r.stdout, r.stderr)


# ------------------------------------------------------------------ 3. decoded sizes
def _gzip_zeros_nc(path: Path, shape=(64, 64, 512)) -> Path:
    import xarray as xr

    ds = xr.Dataset({"measurement": (("y", "x", "energy"), np.zeros(shape, "f4"))},
                    coords={"y": ("y", np.arange(shape[0]) * 2.0, {"units": "nm"}),
                            "x": ("x", np.arange(shape[1]) * 2.0, {"units": "nm"}),
                            "energy": ("energy", 150 + 0.1 * np.arange(shape[2]), {"units": "eV"})},
                    attrs={"technique": "eels", "signal_type": "spectrum_image", "units": "counts"})
    ds.to_netcdf(path, engine="h5netcdf", encoding={"measurement": {"zlib": True, "complevel": 9}})
    return path


def test_gzip_netcdf_refused_on_its_decoded_size(tmp_path, monkeypatch):
    p = _gzip_zeros_nc(tmp_path / "bomb.nc")                # 8 MiB of zeros in a few KB
    assert p.stat().st_size < 200_000
    monkeypatch.setattr(spio.base, "MAX_INPUT_BYTES", 4 << 20)
    _refused(p, r"decoded size 8 MiB exceeds the limit of 4 MiB")
    monkeypatch.setattr(spio.base, "MAX_INPUT_BYTES", 16 << 20)
    assert sp.read(p).shape == (64, 64, 512)


def test_compressed_hspy_and_zspy_refused_on_their_decoded_size(tmp_path, monkeypatch):
    sig = _eels_signal(np.zeros((32, 32, 1024), "f4"))     # 4 MiB of zeros, compressed
    h = _write_rsciio("hspy", tmp_path / "bomb.hspy", sig)
    z = _write_rsciio("zspy", tmp_path / "bomb.zspy", dict(sig))
    monkeypatch.setattr(spio.base, "MAX_INPUT_BYTES", 2 << 20)
    assert h.stat().st_size < 1 << 20
    _refused(h, "decoded size 4 MiB exceeds the limit")
    _refused(z, "decoded size 4 MiB exceeds the limit")


@pytest.mark.parametrize("chunks", [None, (1, 1, 512), (64, 64, 1), (5, 7, 100)])
def test_blockwise_netcdf_reading_is_exact(tmp_path, monkeypatch, chunks):
    """The block reader gives the same array whatever the chunking (blocks smaller than the data)."""
    import xarray as xr

    from specproc.io import netcdf

    monkeypatch.setattr(netcdf, "_BLOCK_BYTES", 100_000)
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(64, 64, 512)).astype("f4")
    enc = {"measurement": {"zlib": True, "chunksizes": chunks}} if chunks else {}
    ds = xr.Dataset({"measurement": (("y", "x", "energy"), Y)},
                    coords={"energy": ("energy", 150 + 0.1 * np.arange(512), {"units": "eV"})},
                    attrs={"technique": "eels", "signal_type": "spectrum_image", "units": "counts"})
    ds.to_netcdf(tmp_path / "b.nc", engine="h5netcdf", encoding=enc)
    m = sp.read(tmp_path / "b.nc")
    assert m.dtype == np.float32 and np.array_equal(m.values, Y)


def test_complex_netcdf_round_trip_blockwise(tmp_path, monkeypatch):
    from specproc.io import netcdf

    monkeypatch.setattr(netcdf, "_BLOCK_BYTES", 4096)
    t = np.arange(3000) * 1e-5
    y = (np.exp(2j * np.pi * 1000 * t) * np.exp(-t / 0.01)).astype(np.complex128)
    m = new_measurement(y, {"time": (t, "s")}, technique="nmr", units="arb", signal_type="fid")
    back = sp.read(sp.save(m, tmp_path / "fid.nc"))
    assert back.dtype == np.complex128 and np.array_equal(back.values, y)


def test_netcdf_reading_memory_is_bounded(tmp_path):
    """Peak memory of reading a 64 MiB small-chunk gzip SI stays near one copy of the data."""
    import xarray as xr

    p = tmp_path / "si.nc"
    # written here, not in the measured interpreter (writing is not measured): counts drawn with
    # integers() and gzip level 1, as poisson() and level 4 cost 5x more time for the same 64 MiB
    # of 1,024-value gzip chunks that the reader has to decode
    Y = np.random.default_rng(0).integers(80, 121, size=(128, 128, 1024), dtype=np.int16).astype("f4")
    xr.Dataset({"measurement": (("y", "x", "energy"), Y)},
               coords={"energy": ("energy", 150 + 0.1 * np.arange(1024), {"units": "eV"})},
               attrs={"technique": "eels", "signal_type": "spectrum_image", "units": "counts"}
               ).to_netcdf(p, engine="h5netcdf",
                           encoding={"measurement": {"zlib": True, "complevel": 1, "chunksizes": (1, 1, 1024)}})
    assert Y.nbytes == 64 << 20
    del Y
    small = _gzip_zeros_nc(tmp_path / "small.nc", shape=(4, 4, 64))
    r = _run_python(f"""
        import resource
        import specproc as sp
        sp.read({str(small)!r})      # imports and plugin discovery: not part of the measurement
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        m = sp.read({str(p)!r})
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / m.nbytes)
    """, timeout=300)
    assert r.returncode == 0, r.stderr
    ratio = float(r.stdout.split()[-1])
    # one copy + one block + the NaN check's mask; one whole-array read held ~2.8 copies here
    assert ratio < 2.3, ratio   # measured 1.8 (the one-read path: 2.9)


# ------------------------------------------------------------------ 4. axis calibration
@pytest.mark.parametrize("scale, offset, match", [(0.0, 150.0, "energy axis scale is 0 eV/channel"),
                                                  (-0.1, 150.0, "energy axis scale is -0.1 eV/channel"),
                                                  (float("nan"), 150.0, "energy axis scale is nan"),
                                                  (0.1, float("inf"), "energy axis offset is inf")])
def test_hspy_with_broken_energy_calibration_is_refused(tmp_path, scale, offset, match):
    p = _write_rsciio("hspy", tmp_path / "cal.hspy", _eels_signal(_spectrum(), scale=scale, offset=offset))
    _refused(p, match)


def test_navigation_axis_scale_zero_is_refused(tmp_path):
    sig = _eels_signal(np.ones((2, 3, 100), "f4"))
    sig["axes"][1]["scale"] = 0.0
    _refused(_write_rsciio("hspy", tmp_path / "nav.hspy", sig), "x axis scale is 0 nm/pixel")


def test_dm_file_with_dispersion_zero_is_refused(tmp_path, monkeypatch):
    """The DigitalMicrograph path (RosettaSciIO axes dicts) goes through the same check."""
    import rsciio.digitalmicrograph as dm

    def fake_reader(filename, **kw):
        return [{"data": _spectrum(), "axes": [{"name": "Energy loss", "scale": 0.0, "offset": 150.0,
                                                "size": 200, "units": "eV", "navigate": False}],
                 "metadata": {}, "original_metadata": {}, "mapping": {}}]

    monkeypatch.setattr(dm, "file_reader", fake_reader)
    p = tmp_path / "zero.dm3"
    p.write_bytes(b"\x00\x00\x00\x03" + b"\x00" * 64)
    _refused(p, "energy axis scale is 0 eV/channel")


def test_cli_eels_on_dispersion_zero_exits_non_zero(tmp_path):
    p = _write_rsciio("hspy", tmp_path / "cal.hspy", _eels_signal(_spectrum(), scale=0.0))
    r = _cli("eels", p, "--json")
    assert r.returncode != 0
    assert "energy axis scale is 0 eV/channel" in json.loads(r.stdout)[0]["error"]


def test_real_dm_files_still_read(realdata):
    for name in ("EELS_STO.dm3", "EELS_SI.dm4"):
        p = realdata / "eels" / name
        if not p.exists():
            pytest.skip(f"{p} not available")
        m = sp.read(p)
        assert m.attrs["acquisition"]["dispersion_eV"] > 0


def test_msa_with_xperchan_zero_is_refused(tmp_path):
    """EMSA files reach the same RosettaSciIO axis check (``#XPERCHAN : 0``)."""
    p = tmp_path / "zero.msa"
    p.write_text("#FORMAT : EMSA/MAS Spectral Data File\n#VERSION : 1.0\n#TITLE : zero\n#NPOINTS : 5\n"
                 "#NCOLUMNS : 1\n#XUNITS : eV\n#YUNITS : counts\n#DATATYPE : Y\n#XPERCHAN : 0.0\n"
                 "#OFFSET : 150.0\n#SIGNALTYPE : ELS\n#SPECTRUM : Spectral Data Starts Here\n"
                 "1, 2, 3, 4, 5\n#ENDOFDATA :\n")
    _refused(p, "energy axis scale is 0 eV/channel")
