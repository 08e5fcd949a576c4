"""The synthetic canopy series behave like the phenology they stand for."""

import numpy as np

from geoproc.products.canopy.composites import CANOPY_BANDS
from tests.helpers.canopy_series import class_grid, series_values, synthetic_dataset


def test_broadleaf_series_has_its_season_and_flips_south():
    doy = np.array([15.0, 196.0])  # mid-January, mid-July
    north = series_values("broadleaf", doy)
    south = series_values("broadleaf", doy, south=True)
    nir = CANOPY_BANDS.index("nir08")
    assert north[1, nir] > 0.38 and north[0, nir] < 0.23
    assert south[0, nir] > 0.38 and south[1, nir] < 0.23


def test_synthetic_dataset_masks_and_georeferences():
    ds = synthetic_dataset(class_grid(["conifer"], repeat=3), cloud_fraction=0.5, seed=1)
    masked = np.isnan(ds["red"].values).mean()
    assert 0.35 < masked < 0.65
    assert ds.rio.crs.to_epsg() == 32632
    assert np.allclose(np.diff(ds["x"].values), 30.0)
