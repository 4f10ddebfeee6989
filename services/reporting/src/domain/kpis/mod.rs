//! The KPI engine's rules: the metrics reporting counts, the catalogue (what each KPI counts and
//! divides), the periods a range splits into in a time zone, and a point's value from its
//! numerator and denominator. Pure.

mod catalogue;
mod model;
mod periods;
mod series;

pub use catalogue::catalogue;
pub use model::*;
pub use periods::{
    Granularity, LEVEL_SECONDS, MAX_PERIODS, Period, Ranges, Tiles, midnight, period_of, periods,
    tile,
};
pub use series::{Observation, Point, Series, series};
