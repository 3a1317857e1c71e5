"""Generate the study's AFM data with known truth (deterministic; run from the repo root).

    .venv/bin/python sample_data/generate_afm.py

Writes ``sample_data/afm/``:

* ``Li_vs_LiBH4-70LiNBH.gwy`` and ``Li_vs_LiBH4.gwy``: Li metal after cycling against each
  electrolyte, PeakForce-QNM-like exports with two channels, ``Height`` (m) and ``DMT Modulus``
  (Pa), 256 x 256 pixels over 5 µm x 5 µm. Height = smooth random roughness + (LiBH4 only) many
  conical/Gaussian protrusions (dendrites) + tilt + scan-line offsets + single-pixel spikes and a
  scar. Modulus = lognormal-ish pixel scatter around the study's means (27.96 GPa smooth surface
  vs 10.36 GPa), with invalid pixels (zeros, negatives, absurd spikes) as a real export has;
* ``Li_vs_LiBH4-70LiNBH_forcemap.nc``: a small force-volume map (8 x 8 curves x 600 points,
  Hertz paraboloid, tip radius 10 nm, per-curve modulus and contact point, noise) in specproc's
  NetCDF layout (``sp.save``; curve axis ``height`` in m shared by every curve);
* ``truth.json``: every number the tests and the pipeline compare against.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "afm"
N = 256
SCAN_M = 5e-6
SAMPLES = {
    # name: (file stem, mean modulus Pa, roughness Sq m, protrusions, seed)
    "LiBH4-70LiNBH": ("Li_vs_LiBH4-70LiNBH", 27.96e9, 2.0e-9, 0, 101),
    "LiBH4": ("Li_vs_LiBH4", 10.36e9, 4.0e-9, 40, 102),
}


def smooth_field(rng, n, corr_px):
    """Gaussian random field with a Gaussian correlation of ``corr_px`` pixels, unit SD."""
    from scipy import ndimage

    f = ndimage.gaussian_filter(rng.normal(size=(n, n)), corr_px, mode="wrap")
    return (f - f.mean()) / f.std()


def bumps(rng, n, count, px_m):
    """Well-separated Gaussian protrusions; returns the height map (m) and their truth."""
    yy, xx = np.mgrid[0:n, 0:n]
    z = np.zeros((n, n))
    centres, out = [], []
    margin, min_sep = 10, 26
    while len(centres) < count:
        c = rng.uniform(margin, n - margin, 2)
        if all(np.hypot(*(c - d)) > min_sep for d in centres):
            centres.append(c)
    for cy, cx in centres:
        h = rng.uniform(40e-9, 120e-9)
        s = rng.uniform(2.0, 4.0)
        z += h * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s ** 2))
        out.append({"x_m": (cx + 0.5) * px_m, "y_m": (cy + 0.5) * px_m, "height_m": h, "sigma_m": s * px_m})
    return z, out


def make_map(name, stem, E_mean, sq, n_bumps, seed):
    from specproc.io.gwyddion import write_gwy

    rng = np.random.default_rng(seed)
    px = SCAN_M / N
    rough = smooth_field(rng, N, 1.5) * sq
    z_bumps, bump_truth = bumps(rng, N, n_bumps, px) if n_bumps else (np.zeros((N, N)), [])
    surface = rough + z_bumps
    yy, xx = np.mgrid[0:N, 0:N]
    tilt = 40e-9 * xx / N - 25e-9 * yy / N + 1.2e-6           # sample tilt and absolute offset
    rows = rng.normal(0, 6e-9, N)[:, None]                      # scan-line offsets
    height = surface + tilt + rows
    spikes = rng.choice(N * N, 25, replace=False)
    height.flat[spikes] += rng.choice([-1, 1], 25) * rng.uniform(80e-9, 300e-9, 25)
    scar_row, scar_x = int(rng.integers(20, N - 20)), int(rng.integers(20, N - 80))
    height[scar_row, scar_x:scar_x + 60] += 50e-9               # a scar along one scan line
    # modulus: multiplicative scatter (correlated), softer on the protrusions (dendritic Li)
    E = E_mean * np.exp(0.15 * smooth_field(rng, N, 2.0) - 0.15 ** 2 / 2)
    E = np.where(z_bumps > 20e-9, E * 0.6, E)
    bad = rng.choice(N * N, 300, replace=False)
    E.flat[bad[:150]] = 0.0
    E.flat[bad[150:250]] = -rng.uniform(1e8, 1e10, 100)
    E.flat[bad[250:]] = rng.uniform(5e12, 5e13, 50)
    valid = np.ones((N, N), bool)
    valid.flat[bad] = False
    write_gwy(OUT / f"{stem}.gwy", [("Height", height, "m"), ("DMT Modulus", E, "Pa")], SCAN_M, SCAN_M)
    d = surface - surface.mean()
    return {"file": f"{stem}.gwy", "scan_size_m": SCAN_M, "pixels": N,
            "modulus_mean_Pa": float(E[valid].mean()), "modulus_median_Pa": float(np.median(E[valid])),
            "modulus_nominal_Pa": E_mean, "n_invalid_modulus": int(bad.size),
            "Sq_m": float(np.sqrt(np.mean(d ** 2))), "Sa_m": float(np.mean(np.abs(d))),
            "roughness_Sq_without_protrusions_m": float(rough.std()),
            "protrusions": {"count": len(bump_truth), "density_per_um2": len(bump_truth) / (SCAN_M * 1e6) ** 2,
                            "list": bump_truth},
            "spikes": 25, "scar_row": scar_row}


def make_force_map():
    import specproc as sp
    from specproc.core.measurement import new_measurement
    from specproc.fitting.components import hertz_paraboloid

    rng = np.random.default_rng(103)
    ny, nx, n, R, nu = 8, 8, 600, 10e-9, 0.3
    h = np.linspace(40e-9, -20e-9, n)                          # piezo/tip height ramp (m), towards the sample
    E = 27.96e9 * np.exp(rng.normal(0, 0.1, (ny, nx)))
    cp = rng.normal(0.0, 2e-9, (ny, nx))                        # contact heights (m)
    F = hertz_paraboloid(-h[None, None, :], E[..., None], R, nu, -cp[..., None], 0.0)
    F = F + 0.2e-9 + 2e-3 * (-h) + rng.normal(0, 0.05e-9, F.shape)   # offset, virtual deflection, noise
    m = new_measurement(F, {"y": (np.arange(ny) * 50e-9, "m"), "x": (np.arange(nx) * 50e-9, "m"),
                            "height": (h, "m")}, technique="afm", units="N", name="force",
                        signal_type="force_volume", sample="LiBH4-70LiNBH",
                        acquisition={"tip_radius_m": R, "poisson_ratio": nu})
    path = OUT / "Li_vs_LiBH4-70LiNBH_forcemap.nc"
    if path.exists():
        path.unlink()
    sp.save(m, path)
    return {"file": path.name, "model": "hertz-paraboloid", "tip_radius_m": R, "poisson_ratio": nu,
            "shape": [ny, nx, n], "E_Pa": E.tolist(), "E_mean_Pa": float(E.mean()), "contact_point_m": cp.tolist(),
            "noise_N": 0.05e-9}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    truth = {"note": "Li metal surfaces after cycling; study means: 27.96 GPa (vs LiBH4-70LiNBH), 10.36 GPa "
                     "(vs LiBH4, many protrusions)", "samples": {}}
    for name, (stem, E, sq, nb, seed) in SAMPLES.items():
        truth["samples"][name] = make_map(name, stem, E, sq, nb, seed)
    truth["force_map"] = make_force_map()
    a, b = truth["samples"]["LiBH4-70LiNBH"], truth["samples"]["LiBH4"]
    truth["modulus_ratio"] = a["modulus_mean_Pa"] / b["modulus_mean_Pa"]
    (OUT / "truth.json").write_text(json.dumps(truth, indent=1))
    print(f"wrote {OUT} (modulus ratio {truth['modulus_ratio']:.3f})")


if __name__ == "__main__":
    main()
