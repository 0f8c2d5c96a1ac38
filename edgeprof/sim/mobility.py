"""Where mobile devices are: traces in a documented CSV format, Porto's taxi POLYLINEs converted into it, a seeded
random-waypoint generator, and seeded k-means placement of edges on the positions' density (seed 002, FOCI).

Trace CSV (`read_trace`, `write_trace`): UTF-8, a header row, then one position fix per row, either

    device,t_s,x_m,y_m          metres in a local frame, or
    device,t_s,lat,lon          degrees (WGS84), projected to metres about the trace's south-west corner

`device` is any non-empty name (a trip, a vehicle); `t_s` is seconds on any origin, strictly increasing along
each device's rows (a device's rows need not be adjacent). Between fixes a device moves in a straight line at
constant speed. A bad row is refused with its line number.

Porto (`convert_porto`): the ECML/PKDD 15 taxi set on Kaggle ("Taxi Trajectory", train.csv) has one trip per
row with columns TRIP_ID, CALL_TYPE, ORIGIN_CALL, ORIGIN_STAND, TAXI_ID, TIMESTAMP, DAY_TYPE, MISSING_DATA and
POLYLINE, a JSON list of [longitude, latitude] fixes 15 s apart. The converter keeps trips without missing
data, and of each the longest run of consecutive fixes inside a box (default: FOCI's 2.5 km^2 downtown area,
our choice of a 1.58 km square centred on Avenida dos Aliados), re-timed from 0 s.

Motion in an episode: `RandomWaypoint` (uniform start, straight legs to uniform waypoints at a speed drawn per
leg, a pause drawn per waypoint) or `TraceMobility` (each device follows a trip drawn from the trace from a
random time within it, and on reaching the trip's end jumps to the start of another drawn trip: a new fare).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeprof.errors import EdgeprofError
from edgeprof.files import atomic_output

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)
PORTO_FIX_INTERVAL_S = 15.0
PORTO_DOWNTOWN = (41.1425, 41.1567, -8.6203, -8.6015)  # lat_min, lat_max, lon_min, lon_max: ~1.58 km x 1.58 km
PORTO_COLUMNS = ("TRIP_ID", "MISSING_DATA", "POLYLINE")
COLUMN_SETS = (("x_m", "y_m"), ("lat", "lon"))


@dataclass(frozen=True)
class Trace:
    """Position fixes per device: `columns` ("x_m", "y_m") or ("lat", "lon"), and per device its times (n,) and
    coordinates (n, 2) in those columns' units."""

    columns: tuple[str, str]
    devices: tuple[str, ...]
    times_s: tuple[np.ndarray, ...]
    coordinates: tuple[np.ndarray, ...]

    def positions_m(self) -> tuple[np.ndarray, ...]:
        """Every device's fixes in metres (x east, y north); lat/lon are projected about the south-west corner of
        the whole trace (equirectangular at the trace's mean latitude: metre-accurate over a city)."""
        if self.columns == ("x_m", "y_m"):
            return self.coordinates
        every = np.concatenate(self.coordinates)
        lat0, lon0 = every[:, 0].min(), every[:, 1].min()
        scale_y = math.radians(1.0) * EARTH_RADIUS_M
        scale_x = scale_y * math.cos(math.radians(float(every[:, 0].mean())))
        return tuple(np.stack([(c[:, 1] - lon0) * scale_x, (c[:, 0] - lat0) * scale_y], axis=-1)
                     for c in self.coordinates)


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise EdgeprofError(f"{where}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise EdgeprofError(f"{where}: {what} must be finite, got {text}")
    return value


def read_trace(path: str | Path) -> Trace:
    """A trace CSV (module docstring); a malformed row is refused with its line number."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise EdgeprofError(f"cannot read trace {path}: {error.strerror or error}") from None
    rows: dict[str, tuple[list[float], list[tuple[float, float]]]] = {}
    with handle:
        reader = csv.reader(handle)
        try:
            header = tuple(field.strip() for field in next(reader, []))
            if header[:1] != ("device",) or header[1:2] != ("t_s",) or tuple(header[2:]) not in COLUMN_SETS:
                raise EdgeprofError(f"{path} line 1: the header must be device,t_s,x_m,y_m or device,t_s,lat,lon, "
                                    f"got {','.join(header) or 'nothing'}")
            columns = header[2:]
            for row in reader:
                where = f"{path} line {reader.line_num}"
                if not row or all(not field.strip() for field in row):
                    continue
                if len(row) != 4:
                    raise EdgeprofError(f"{where}: expected 4 fields ({','.join(header)}), got {len(row)}")
                device = row[0].strip()
                if not device:
                    raise EdgeprofError(f"{where}: the device name is empty")
                t = _number(row[1], "t_s", where)
                a, b = _number(row[2], columns[0], where), _number(row[3], columns[1], where)
                if columns == ("lat", "lon") and not (-90 <= a <= 90 and -180 <= b <= 180):
                    raise EdgeprofError(f"{where}: lat must lie in [-90, 90] and lon in [-180, 180], got {a}, {b}")
                times, fixes = rows.setdefault(device, ([], []))
                if times and t <= times[-1]:
                    raise EdgeprofError(f"{where}: t_s {t:g} of device {device!r} does not follow its previous fix "
                                        f"at {times[-1]:g} s (times must increase along a device's rows)")
                times.append(t)
                fixes.append((a, b))
        except UnicodeDecodeError:
            raise EdgeprofError(f"trace {path} is not a UTF-8 text file") from None
        except csv.Error as error:
            raise EdgeprofError(f"{path} line {reader.line_num}: {error}") from None
    if not rows:
        raise EdgeprofError(f"trace {path} has no fixes")
    return Trace(columns, tuple(rows), tuple(np.array(t) for t, _ in rows.values()),
                 tuple(np.array(f, dtype=np.float64).reshape(-1, 2) for _, f in rows.values()))


def write_trace(path: str | Path, trace: Trace) -> None:
    """Write `trace` as a trace CSV, whole or not at all; `read_trace` gives back the same numbers."""
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("device", "t_s", *trace.columns))
        for device, times, fixes in zip(trace.devices, trace.times_s, trace.coordinates, strict=True):
            for t, (a, b) in zip(times.tolist(), fixes.tolist(), strict=True):
                writer.writerow((device, repr(t), repr(a), repr(b)))


def _longest_run_inside(fixes: np.ndarray, box: Sequence[float]) -> tuple[int, int]:
    """[start, stop) of the longest run of consecutive (lat, lon) fixes inside the box."""
    lat_min, lat_max, lon_min, lon_max = box
    inside = ((fixes[:, 0] >= lat_min) & (fixes[:, 0] <= lat_max) & (fixes[:, 1] >= lon_min)
              & (fixes[:, 1] <= lon_max))
    best, start = (0, 0), None
    for i, flag in enumerate([*inside.tolist(), False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best


def convert_porto(source: str | Path, destination: str | Path, box: Sequence[float] = PORTO_DOWNTOWN,
                  max_trips: int | None = None, min_fixes: int = 2) -> int:
    """Convert Kaggle's Porto taxi train.csv (module docstring) into a lat/lon trace CSV; returns the trips
    written. Trips with missing data, or with fewer than `min_fixes` consecutive fixes inside `box`, are left
    out."""
    source = Path(source)
    if len(box) != 4 or not (box[0] < box[1] and box[2] < box[3]):
        raise EdgeprofError(f"the box must be lat_min, lat_max, lon_min, lon_max with min < max, got {list(box)}")
    if min_fixes < 1:
        raise EdgeprofError(f"min_fixes must be at least 1, got {min_fixes}")
    try:
        handle = source.open(newline="", encoding="utf-8")
    except OSError as error:
        raise EdgeprofError(f"cannot read {source}: {error.strerror or error}") from None
    devices, times, coordinates = [], [], []
    with handle:
        reader = csv.DictReader(handle)
        missing = [name for name in PORTO_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise EdgeprofError(f"{source} is not Porto's train.csv: it lacks column(s) {', '.join(missing)}")
        try:
            for row in reader:
                if max_trips is not None and len(devices) >= max_trips:
                    break
                where = f"{source} line {reader.line_num}"
                if row["MISSING_DATA"] is None or row["POLYLINE"] is None:
                    raise EdgeprofError(f"{where}: the row has fewer fields than the header")
                if row["MISSING_DATA"].strip().lower() == "true":
                    continue
                try:
                    polyline = json.loads(row["POLYLINE"])
                    fixes = np.array([(float(lat), float(lon)) for lon, lat in polyline], dtype=np.float64)
                except (ValueError, TypeError):
                    raise EdgeprofError(f"{where}: POLYLINE is not a JSON list of [longitude, latitude] "
                                        "pairs") from None
                if len(fixes) == 0:
                    continue
                start, stop = _longest_run_inside(fixes.reshape(-1, 2), box)
                if stop - start < min_fixes:
                    continue
                devices.append(row["TRIP_ID"].strip())
                times.append(PORTO_FIX_INTERVAL_S * np.arange(stop - start, dtype=np.float64))
                coordinates.append(fixes[start:stop])
        except UnicodeDecodeError:
            raise EdgeprofError(f"{source} is not a UTF-8 text file") from None
        except csv.Error as error:
            raise EdgeprofError(f"{source} line {reader.line_num}: {error}") from None
    if len(set(devices)) != len(devices):
        raise EdgeprofError(f"{source}: TRIP_ID values repeat; each trip needs its own id")
    write_trace(destination, Trace(("lat", "lon"), tuple(devices), tuple(times), tuple(coordinates)))
    return len(devices)


class RandomWaypoint:
    """Seeded random-waypoint motion in the rectangle [0, width] x [0, height] (module docstring)."""

    def __init__(self, rng: np.random.Generator, count: int, extent_m: Sequence[float],
                 speed_mps: Sequence[float], pause_s: Sequence[float]) -> None:
        self.rng, self.extent = rng, np.asarray(extent_m, dtype=np.float64)
        self.speed_range, self.pause_range = tuple(speed_mps), tuple(pause_s)
        self.positions = rng.uniform(0.0, 1.0, (count, 2)) * self.extent
        self.targets = rng.uniform(0.0, 1.0, (count, 2)) * self.extent
        self.speeds = rng.uniform(*self.speed_range, count)
        self.pause_left = np.zeros(count)

    def advance(self, seconds: float) -> np.ndarray:
        """Move every device on by `seconds`; returns the positions (count, 2) in metres."""
        left = np.full(len(self.positions), float(seconds))
        while True:
            pausing = np.minimum(self.pause_left, left)
            self.pause_left -= pausing
            left -= pausing
            moving = left > 0
            if not moving.any():
                return self.positions
            offset = self.targets - self.positions
            distance = np.hypot(offset[:, 0], offset[:, 1])
            needed = distance / self.speeds
            arrive = moving & (needed <= left)
            partial = moving & ~arrive
            fraction = np.where(partial, left / np.where(needed > 0, needed, 1.0), 0.0)
            self.positions = np.where(partial[:, None], self.positions + offset * fraction[:, None], self.positions)
            left = np.where(partial, 0.0, left)
            if arrive.any():
                index = np.flatnonzero(arrive)
                self.positions[index] = self.targets[index]
                left[index] -= needed[index]
                self.pause_left[index] = self.rng.uniform(*self.pause_range, len(index))
                self.targets[index] = self.rng.uniform(0.0, 1.0, (len(index), 2)) * self.extent
                self.speeds[index] = self.rng.uniform(*self.speed_range, len(index))


class TraceMobility:
    """Devices following trips of a trace (in metres): each from a random time within a drawn trip, then from
    the start of the next drawn trip whenever one ends. Trips of a single fix are left out."""

    def __init__(self, rng: np.random.Generator, count: int, times_s: Sequence[np.ndarray],
                 positions_m: Sequence[np.ndarray]) -> None:
        trips = [(t - t[0], p) for t, p in zip(times_s, positions_m, strict=True) if len(t) > 1]
        if not trips:
            raise EdgeprofError("the trace has no device with two fixes or more: nothing moves")
        self.rng, self.trips = rng, trips
        self.durations = np.array([t[-1] for t, _ in trips])
        self.trip = rng.integers(len(trips), size=count)
        self.clock = rng.uniform(0.0, 1.0, count) * self.durations[self.trip]
        self.positions = self._positions()

    def _positions(self) -> np.ndarray:
        out = np.empty((len(self.trip), 2))
        for m, (trip, clock) in enumerate(zip(self.trip.tolist(), self.clock.tolist(), strict=True)):
            times, fixes = self.trips[trip]
            out[m] = np.interp(clock, times, fixes[:, 0]), np.interp(clock, times, fixes[:, 1])
        return out

    def advance(self, seconds: float) -> np.ndarray:
        self.clock = self.clock + seconds
        ended = self.clock > self.durations[self.trip]
        while ended.any():
            index = np.flatnonzero(ended)
            self.clock[index] -= self.durations[self.trip[index]]
            self.trip[index] = self.rng.integers(len(self.trips), size=len(index))
            ended = self.clock > self.durations[self.trip]
        self.positions = self._positions()
        return self.positions


def kmeans(points: np.ndarray, count: int, seed: int, iterations: int = 100) -> np.ndarray:
    """`count` centres (count, 2) of seeded k-means (k-means++ start, then Lloyd's iterations until no point
    changes cluster); an emptied cluster restarts at the point farthest from its centre."""
    points = np.asarray(points, dtype=np.float64)
    if len(points) < count:
        raise EdgeprofError(f"k-means needs at least {count} points to place {count} edges, got {len(points)}")
    rng = np.random.default_rng(seed)
    centres = [points[rng.integers(len(points))]]
    nearest = np.sum((points - centres[0]) ** 2, axis=1)
    for _ in range(1, count):
        total = nearest.sum()
        pick = rng.choice(len(points), p=nearest / total) if total > 0 else rng.integers(len(points))
        centres.append(points[pick])
        nearest = np.minimum(nearest, np.sum((points - points[pick]) ** 2, axis=1))
    centres = np.array(centres)
    labels = None
    for _ in range(iterations):
        squared = np.sum((points[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
        new_labels = squared.argmin(axis=1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        for c in range(count):
            members = labels == c
            if members.any():
                centres[c] = points[members].mean(axis=0)
            else:
                centres[c] = points[int(squared[np.arange(len(points)), labels].argmax())]
    return centres
