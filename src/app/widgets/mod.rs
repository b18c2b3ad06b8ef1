//! Widgets drawn by more than one screen or large enough to stand alone.

pub mod dataset_preview;
pub mod loss_chart;
pub mod shift_chart;
