"""PANalytical XRDML (``.xrdml``) powder / ω–2θ scans -> XRD pattern measurement.

The XML is parsed with :mod:`defusedxml` (files come from instrument PCs and shared drives;
entity expansion must not be possible). XRDML versions 1.0–2.x share the structure used here::

    xrdMeasurements/xrdMeasurement/usedWavelength/{kAlpha1,kAlpha2,kBeta,ratioKAlpha2KAlpha1}
    xrdMeasurements/xrdMeasurement/scan/dataPoints/
        positions[@axis="2Theta"]/{startPosition,endPosition | listPositions | commonPosition}
        {counts | intensities}, commonCountingTime | countingTimes, beamAttenuationFactors

xrayutilities' ``XRDMLFile`` reads the same files but returns counts per second and needs
the whole file in memory as its own object tree; specproc keeps raw counts (so Poisson
weights stay valid) and the full vendor tree, hence this small reader.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..core.errors import ReaderError
from ._xrd import check_size, numbers, validate_pattern
from .base import Reader, head_bytes, library_reason, require_file

#: Stated default when a file carries no wavelength: Cu Kα1 (Hölzer et al., Phys. Rev. A 56 (1997) 4554).
DEFAULT_WAVELENGTH_NM = 0.15405980
DEFAULT_KALPHA2_NM = 0.15444260
DEFAULT_KALPHA2_RATIO = 0.5


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el, name):
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el, name):
    return [c for c in el if _local(c.tag) == name]


def _float(el, name, scale=1.0):
    c = _child(el, name) if el is not None else None
    if c is None or c.text is None or not c.text.strip():
        return None
    try:
        return float(c.text) * scale
    except ValueError:
        return None


def _tree_to_dict(el, depth=0):
    """Vendor metadata tree (everything but the long numeric arrays) as nested dicts."""
    d = {f"@{k.rsplit('}', 1)[-1]}": v for k, v in el.attrib.items()}
    for c in el:
        name = _local(c.tag)
        if name in ("counts", "intensities", "listPositions", "beamAttenuationFactors", "countingTimes"):
            t = (c.text or "").strip()
            d[name] = t if t.startswith("<") else f"<{len(t.split())} values>"
            continue
        sub = _tree_to_dict(c, depth + 1) if len(c) or c.attrib else (c.text or "").strip()
        if name in d:
            if not isinstance(d[name], list):
                d[name] = [d[name]]
            d[name].append(sub)
        else:
            d[name] = sub
    if not len(el) and el.text and el.text.strip() and d:
        d["#text"] = el.text.strip()
    return d


def _numbers(el, path, what):
    # numpy's C parser, then drop the text: a 200 MB file must not become a list of Python strings
    out = numbers(el.text, path, what)
    el.text = f"<{out.size} values>"
    return out


class XrdmlReader(Reader):
    """PANalytical XRDML scans (Empyrean, X'Pert...)."""

    name = "xrdml"
    priority = Reader.HEADER
    library = "specproc (defusedxml)"
    description = "PANalytical XRDML diffraction scans (2θ axis, counts, wavelengths from the file)"
    technique = "xrd"
    extensions = (".xrdml",)
    url = "https://www.malvernpanalytical.com/"

    def guess_can_open(self, path: Path) -> bool:
        return b"<xrdMeasurements" in head_bytes(Path(path), 2048)

    def read(self, path: Path, scan: int | None = None, wavelength_nm: float | None = None):
        """Read an XRDML file.

        Parameters
        ----------
        path : Path
            The ``.xrdml`` file.
        scan : int, optional
            Index of the ``<scan>`` to read. Default: all scans stacked as ``("scan", "two_theta")``
            when their 2θ grids agree, else the first scan with a warning.
        wavelength_nm : float, optional
            Override the Kα1 wavelength (nm); otherwise taken from ``<usedWavelength>``, else the
            stated default Cu Kα1 0.15405980 nm (``acquisition["wavelength_source"] = "default"``).

        Returns
        -------
        xarray.DataArray
            dims ``("two_theta",)`` in deg (or ``("scan", "two_theta")``), values in counts.
        """
        from defusedxml import ElementTree as ET

        from ..core.measurement import new_measurement
        from ..core.provenance import file_provenance

        path = require_file(Path(path))
        check_size(path)
        from defusedxml import DefusedXmlException

        try:
            root = ET.parse(str(path)).getroot()
        except ET.ParseError as exc:
            raise ReaderError(f"not well-formed XML (truncated or corrupt?): {exc}", path) from None
        except DefusedXmlException:
            raise ReaderError("XML refused: it declares a DTD or entities (never part of an XRDML file, and "
                              "a way to make a reader fetch other files)", path) from None
        except (ValueError, LookupError) as exc:  # expat: an encoding it cannot decode
            raise ReaderError("XML refused: its declaration names an encoding that cannot be read "
                              "(corrupt header?)" if "encoding" in str(exc) else
                              f"XML refused: {library_reason(exc)}", path) from exc
        if _local(root.tag) != "xrdMeasurements":
            raise ReaderError(f"root element is <{_local(root.tag)}>, not <xrdMeasurements>", path)
        meas_all = _children(root, "xrdMeasurement")
        if not meas_all:
            raise ReaderError("no <xrdMeasurement> element", path)
        scans = [(m, s) for m in meas_all for s in _children(m, "scan")]
        if not scans:
            raise ReaderError("no <scan> element (no data)", path)

        parsed = []
        for i, (m, s) in enumerate(scans):
            try:
                parsed.append(self._scan(path, m, s))
            except ReaderError as exc:
                if scan is not None and i != scan:
                    continue
                raise ReaderError(f"scan {i}: {exc.reason}", path) from None
        if scan is not None:
            if not 0 <= scan < len(scans):
                raise ReaderError(f"scan={scan} requested but the file has {len(scans)} scan(s)", path)
            parsed = [parsed[scan]]
        tt0 = parsed[0]["two_theta"]
        stack = len(parsed) > 1 and all(p["two_theta"].shape == tt0.shape and
                                        np.allclose(p["two_theta"], tt0, atol=1e-6) for p in parsed)
        if len(parsed) > 1 and not stack:
            warnings.warn(f"{path}: {len(parsed)} scans with different 2θ grids; reading the first "
                          f"(use scan=N for another)", UserWarning, stacklevel=3)
            parsed = parsed[:1]
        # a stack whose ω offset (ω − 2θ/2) changes from scan to scan is a reciprocal-space map,
        # not a series of powder patterns: keep ω so nothing downstream can mistake one for the other
        offsets = [p["omega_offset"] for p in parsed]
        rsm = stack and all(o is not None for o in offsets) and float(np.ptp(offsets)) > 1e-4

        m0 = parsed[0]["measurement"]
        wl = _child(m0, "usedWavelength")
        k1 = _float(wl, "kAlpha1", 0.1)
        k2 = _float(wl, "kAlpha2", 0.1)
        kb = _float(wl, "kBeta", 0.1)
        ratio = _float(wl, "ratioKAlpha2KAlpha1")
        source = "file"
        if wavelength_nm is not None:
            k1, source = float(wavelength_nm), "user"
        elif k1 is None:
            k1, k2, ratio, source = DEFAULT_WAVELENGTH_NM, DEFAULT_KALPHA2_NM, DEFAULT_KALPHA2_RATIO, "default"
        tube = None
        for el in m0.iter():
            if _local(el.tag) == "anodeMaterial":
                tube = (el.text or "").strip() or None
                break
        sample_el = _child(root, "sample")
        sample = None
        if sample_el is not None:
            for key in ("name", "id"):
                c = _child(sample_el, key)
                if c is not None and c.text and c.text.strip():
                    sample = c.text.strip()
                    break
        first = parsed[0]
        acquisition = {
            "wavelength_nm": k1, "kalpha2_nm": k2, "kalpha2_ratio": ratio, "kbeta_nm": kb,
            "wavelength_source": source, "anode": tube,
            "counting_time_s": first["counting_time"], "step_deg": first["step"],
            "scan_axis": first["scan_axis"], "measurement_type": m0.attrib.get("measurementType") or None,
            "n_scans": len(parsed),
            "attenuation_applied": any(p["attenuated"] for p in parsed),
            "omega_offset_deg": first["omega_offset"], "reciprocal_space_map": bool(rsm),
        }
        date = None
        hdr = _child(first["scan"], "header")
        if hdr is not None and _child(hdr, "startTimeStamp") is not None:
            date = (_child(hdr, "startTimeStamp").text or "").strip() or None
        instrument = None
        for el in root.iter():
            if _local(el.tag) == "instrumentControlSoftware":
                instrument = (el.text or "").strip() or None
                break
        original = _tree_to_dict(root)
        prov = file_provenance(path, self.name)
        md = {"instrument": instrument, "date": date}
        if stack:
            values = np.vstack([p["counts"] for p in parsed])
            coords = [("scan", np.arange(len(parsed)), ""), ("two_theta", tt0, "deg")]
        else:
            values, coords = first["counts"], [("two_theta", first["two_theta"], "deg")]
        da = new_measurement(values, coords, technique="xrd", units="counts",
                             signal_type="rsm" if rsm else "pattern", sample=sample or path.stem, metadata=md,
                             acquisition=acquisition, original_metadata=original, provenance=prov, source=str(path))
        if rsm:
            om = np.vstack([p["omega"] for p in parsed])
            da = da.assign_coords(omega=(("scan", "two_theta"), om, {"units": "deg"}),
                                  omega_offset=("scan", np.asarray(offsets, float), {"units": "deg"}))
        return da

    # ------------------------------------------------------------------ one scan
    def _scan(self, path, meas, scan):
        dp = _child(scan, "dataPoints")
        if dp is None:
            raise ReaderError("no <dataPoints>", path)
        counts_el = _child(dp, "counts")
        if counts_el is None:
            counts_el = _child(dp, "intensities")
        if counts_el is None:
            raise ReaderError("no <counts> or <intensities> in <dataPoints>", path)
        counts = _numbers(counts_el, path, _local(counts_el.tag))
        if counts.size == 0:
            raise ReaderError("empty intensity array (no data points)", path)
        n = counts.size
        axes = {}
        for pos in _children(dp, "positions"):
            ax = pos.attrib.get("axis", "")
            lst = _child(pos, "listPositions")
            if lst is not None:
                axes[ax] = _numbers(lst, path, "listPositions")
            elif _child(pos, "startPosition") is not None:
                a, b = _float(pos, "startPosition"), _float(pos, "endPosition")
                if a is None or b is None:
                    raise ReaderError(f"axis {ax}: bad start/end position", path)
                axes[ax] = np.linspace(a, b, n) if n > 1 else np.array([a])
            else:
                c = _float(pos, "commonPosition")
                axes[ax] = None if c is None else np.full(n, c)
        tt = axes.get("2Theta")
        scan_axis = scan.attrib.get("scanAxis", "")
        if tt is None or (n > 1 and np.ptp(tt) == 0):
            varying = [k for k, v in axes.items() if v is not None and n > 1 and np.ptp(v) > 0]
            hint = ""
            if "Omega" in varying:
                hint = (" - an ω (rocking-curve) scan; several of them at stepped 2θ form a reciprocal-space map: "
                        "read it with xrayutilities.io.getxrdml_map, or export a 2θ/ω-2θ scan")
            raise ReaderError(f"scan axis {scan_axis or '?'} does not vary 2Theta (varying axes: "
                              f"{', '.join(varying) or 'none'}); not a 2θ pattern{hint}", path)
        if tt.size != n:
            raise ReaderError(f"2Theta has {tt.size} positions for {n} intensities", path)
        validate_pattern(tt, counts, path, signal=_local(counts_el.tag))
        om = axes.get("Omega")
        om = om if om is not None and om.size == n else None
        attenuated = False
        att_el = _child(dp, "beamAttenuationFactors")
        if att_el is not None:
            att = _numbers(att_el, path, "beamAttenuationFactors")
            # counts behind an attenuator are scaled back so the pattern is continuous
            if att.size == n and not np.allclose(att, 1.0):
                counts = counts * att
                attenuated = True
        ct = _float(dp, "commonCountingTime")
        if ct is None and _child(dp, "countingTimes") is not None:
            ctimes = _numbers(_child(dp, "countingTimes"), path, "countingTimes")
            ct = float(np.median(ctimes)) if ctimes.size else None
        if tt[0] > tt[-1]:
            tt, counts = tt[::-1], counts[::-1]
            om = om[::-1] if om is not None else None
        step = float((tt[-1] - tt[0]) / (n - 1)) if n > 1 else None
        # ω − 2θ/2: 0 for a symmetric (coupled) scan; constant for an ω-2θ scan with an offset
        off = float(np.median(om - tt / 2)) if om is not None else None
        return {"measurement": meas, "scan": scan, "two_theta": np.asarray(tt, float), "counts": counts,
                "counting_time": ct, "step": step, "scan_axis": scan_axis, "attenuated": attenuated,
                "omega": om, "omega_offset": off}
