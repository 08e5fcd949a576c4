"""Render one overpass over one UTM zone: the bands, the QA layer and the per-item truth.

The scene is computed once on the union grid of the zone's granules and cut into granule
windows, so overlapping granules of the same overpass carry identical pixels (as real HLS
and RTC tiles cut from one acquisition do). Random draws that must agree between the two
zones (cloud cover, cloud field, atmosphere) are keyed by the acquisition only; pixel noise
and speckle are keyed by acquisition and zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from geoproc.catalog.sensors import FMASK_NODATA, profile_for
from geoproc.dev.sample.clouds import TRUTH_NODATA, cloud_layers, draw_cloud_scene, fmask
from geoproc.dev.sample.flood import flooded
from geoproc.dev.sample.noise import rng_for, smooth_field
from geoproc.dev.sample.phenology import endmember_fractions
from geoproc.dev.sample.region import CENTER_LAT, CENTER_LON, ZoneGrid
from geoproc.dev.sample.sar import backscatter_db, speckled_linear
from geoproc.dev.sample.scene import RIVER, URBAN, WATER, World
from geoproc.dev.sample.schedule import Acquisition
from geoproc.dev.sample.spectra import GREEN_ENDMEMBERS, cloud_shape, mix
from geoproc.dev.sample.sun import solar_position
from geoproc.dev.sample.thermal import (
    PLANCK,
    air_temperature_k,
    at_sensor_radiance,
    brightness_temperature,
    emissivity,
    planck_radiance,
    scene_atmosphere,
    surface_temperature,
)

_SNOW_SPELLS = ((8, 19), (57, 63), (337, 346))


@dataclass
class Rendered:
    """Arrays on the zone's union grid for one acquisition."""

    assets: dict[str, np.ndarray]
    valid: np.ndarray
    sun_zenith: float
    sun_azimuth: float
    truth: dict[str, np.ndarray] = field(default_factory=dict)
    properties: dict = field(default_factory=dict)


def snow_depth_factor(day: dt.date, seed: int) -> float:
    """1 during short snow spells in winter (dates jittered by the seed), else 0."""
    doy = day.timetuple().tm_yday
    shift = int(rng_for(seed, 77).integers(-2, 3))
    return 1.0 if any(a + shift <= doy <= b + shift for a, b in _SNOW_SPELLS) else 0.0


def swath_valid(
    collection: str, orbit_state: str, x_km: np.ndarray, y_km: np.ndarray
) -> np.ndarray:
    """Pixels inside the sensor swath: the S2 orbit's east edge and the S1 descending west edge
    cut through the outer granules, as real swath edges cut MGRS tiles."""
    if collection == "HLSS30_2.0":
        return (x_km - 0.2 * y_km) < 3.8
    if collection == "sentinel-1-rtc" and orbit_state == "descending":
        return (x_km + 0.25 * y_km) > -3.4
    return np.ones(np.shape(x_km), bool)


def render_optical(acq: Acquisition, zone: ZoneGrid, world: World, *, seed: int) -> Rendered:
    """HLS bands, Fmask, and the cloud / LST / emissivity truth of one overpass."""
    profile = profile_for(acq.collection)
    x, y = zone.local_km
    shape = x.shape
    day, doy = acq.date, acq.doy
    zenith, azimuth = solar_position(acq.datetime, CENTER_LON, CENTER_LAT)
    scene = draw_cloud_scene(day, zenith, azimuth, rng_for(seed, 300, acq.key))
    layers = cloud_layers(
        x, y, scene, rng_for(seed, 301, acq.key), rng_for(seed, 302, acq.key, zone.zone)
    )
    flood = flooded(world, day)
    snow = snow_depth_factor(day, seed)
    fractions = endmember_fractions(world, doy, flood=flood, snow_depth_factor=snow)
    pixel_rng = rng_for(seed, 303, acq.key, zone.zone)
    valid = swath_valid(acq.collection, acq.orbit_state, x, y)

    alpha, shadow = layers.opacity, layers.shadow
    gain = world.texture * (1.0 + 0.015 * pixel_rng.standard_normal(shape))
    brightness = 0.35 + 0.45 * alpha
    assets: dict[str, np.ndarray] = {}
    for band in profile.bands:
        if band.name in PLANCK:
            continue
        surface = mix(fractions, band.center_wavelength) * gain * (1.0 - 0.7 * shadow)
        refl = (1.0 - alpha) * surface + alpha * brightness * cloud_shape(band.center_wavelength)
        refl = refl + pixel_rng.normal(0.0, 0.002, shape)
        dn = np.clip(np.round((refl - band.offset) / band.scale), -200, 16000).astype(np.int16)
        dn[~valid] = int(band.nodata)
        assets[band.asset] = dn

    water = (world.landcover == WATER) | (world.landcover == RIVER) | flood
    aot = scene.aot * np.exp(
        0.3
        * smooth_field(
            x, y, rng_for(seed, 306, acq.key), wavelength_km=(2.0, 20.0), waves=12, step=8
        )
    )
    qa = fmask(layers, water=water, snow=fractions["snow"] > 0.5, aot=aot)
    qa[~valid] = FMASK_NODATA
    assets[profile.qa.asset] = qa

    truth_clouds = layers.truth.copy()
    truth_clouds[~valid] = TRUTH_NODATA
    out = Rendered(assets, valid, zenith, azimuth, truth={"clouds": truth_clouds})

    if any(b.name in PLANCK for b in profile.bands):
        air = air_temperature_k(doy) + float(rng_for(seed, 304, acq.key).normal(0.0, 2.0))
        atmosphere = scene_atmosphere(doy, air, rng_for(seed, 305, acq.key))
        sun_factor = max(0.0, float(np.cos(np.radians(zenith))))
        lst = surface_temperature(
            fractions,
            doy=doy,
            air_k=air,
            sun_factor=sun_factor,
            elevation_m=world.elevation_m,
            shadow=shadow,
            smooth_noise=smooth_field(
                x, y, rng_for(seed, 307, acq.key), wavelength_km=(0.3, 3.0), waves=24, step=3
            ),
            rng=pixel_rng,
        )
        cloud_top_k = air - 6.5 * (scene.height_km + 0.5)
        emis = []
        for band in profile.bands:
            if band.name not in PLANCK:
                continue
            eps = emissivity(fractions, band.name, pixel_rng)
            radiance = at_sensor_radiance(lst, eps, atmosphere, band.name)
            radiance = (1.0 - alpha) * radiance + alpha * planck_radiance(cloud_top_k, band.name)
            bt = brightness_temperature(radiance, band.name)
            dn = np.round((bt - band.offset) / band.scale)
            dn = np.clip(dn, -9000, 9000).astype(np.int16)
            dn[~valid] = int(band.nodata)
            assets[band.asset] = dn
            emis.append(eps.astype(np.float32))
        lst = lst.astype(np.float32)
        lst[~valid] = np.nan
        emissivity_truth = np.stack(emis)
        emissivity_truth[:, ~valid] = np.nan
        out.truth["lst"] = lst
        out.truth["emissivity"] = emissivity_truth
        out.properties["geoproc:atmosphere"] = atmosphere.as_properties()
    return out


def render_sar(acq: Acquisition, zone: ZoneGrid, world: World, *, seed: int) -> Rendered:
    """Sentinel-1 RTC gamma0 VV and VH (linear, nodata 0) for one overpass."""
    x, y = zone.local_km
    day, doy = acq.date, acq.doy
    zenith, azimuth = solar_position(acq.datetime, CENTER_LON, CENTER_LAT)
    flood = flooded(world, day)
    fractions = endmember_fractions(world, doy, flood=flood)
    green = sum(fractions[n] for n in GREEN_ENDMEMBERS)
    scene_rng = rng_for(seed, 400, acq.key)
    wind_db = float(scene_rng.uniform(-3.0, 5.0))
    moisture_db = float(scene_rng.normal(0.0, 1.0))
    static = world.radar_texture
    static_db = 0.8 * static + np.where(world.landcover == URBAN, 2.0 * static, 0.0)
    vv_db, vh_db = backscatter_db(
        world,
        doy,
        flood=flood,
        green=green,
        wind_db=wind_db,
        moisture_db=moisture_db,
        wet_snow=snow_depth_factor(day, seed) > 0,
        static_db=static_db,
    )
    speckle_rng = rng_for(seed, 402, acq.key, zone.zone)
    valid = swath_valid(acq.collection, acq.orbit_state, x, y)
    assets = {}
    for name, db in (("vv", vv_db), ("vh", vh_db)):
        lin = speckled_linear(db, speckle_rng)
        lin[~valid] = 0.0
        assets[name] = lin
    return Rendered(assets, valid, zenith, azimuth)
