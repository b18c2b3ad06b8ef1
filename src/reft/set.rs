//! The modules of a run or an adapter, each placed at one layer, built from the configs.

use candle_core::{Device, Result, Var};

use super::hook::RowPositions;
use super::intervention::{Intervention, InterventionConfig};

/// The part of a config's positions that a module edits. An untied config with first and
/// last positions gets one module for each part. Otherwise one module edits both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Both,
    Prefix,
    Suffix,
}

/// One module at one layer.
pub struct PlacedIntervention {
    /// Unique within the set; the tensor-name prefix in adapter files.
    pub key: String,
    /// Index of the config this module comes from.
    pub config_index: usize,
    pub layer: usize,
    pub part: Part,
    pub intervention: Intervention,
}

/// Every module of a run, in a fixed order (config, layer, part).
pub struct InterventionSet {
    configs: Vec<InterventionConfig>,
    modules: Vec<PlacedIntervention>,
}

/// Returns where modules go: (config index, layer, part, key), in the set's order.
pub fn placements(
    configs: &[InterventionConfig],
    num_layers: usize,
) -> Vec<(usize, usize, Part, String)> {
    let mut out = Vec::new();
    for (index, config) in configs.iter().enumerate() {
        let name = config_name(config, index);
        for layer in config.resolved_layers(num_layers) {
            if config.tied || !config.positions.has_two_parts() {
                out.push((index, layer, Part::Both, format!("{name}.layer{layer}")));
            } else {
                out.push((
                    index,
                    layer,
                    Part::Prefix,
                    format!("{name}.layer{layer}.prefix"),
                ));
                out.push((
                    index,
                    layer,
                    Part::Suffix,
                    format!("{name}.layer{layer}.suffix"),
                ));
            }
        }
    }
    out
}

/// Returns the config's name, or "<type>" (plus its index when several configs exist).
pub fn config_name(config: &InterventionConfig, index: usize) -> String {
    match &config.name {
        Some(name) => name.clone(),
        None if index == 0 => config.kind.name().to_string(),
        None => format!("{}{index}", config.kind.name()),
    }
}

impl InterventionSet {
    /// Creates fresh modules. Each module's parameters come from `seed` and its place in
    /// the set, so the same seed always gives the same start.
    pub fn new(
        configs: Vec<InterventionConfig>,
        hidden: usize,
        num_layers: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let mut modules = Vec::new();
        for (position, (config_index, layer, part, key)) in
            placements(&configs, num_layers).into_iter().enumerate()
        {
            let module_seed = seed.wrapping_add(1_000_003 * position as u64);
            let intervention =
                Intervention::new(configs[config_index].clone(), hidden, module_seed, device)?;
            modules.push(PlacedIntervention {
                key,
                config_index,
                layer,
                part,
                intervention,
            });
        }
        Ok(Self { configs, modules })
    }

    /// Wraps modules that were built elsewhere (loaded from an adapter).
    pub fn from_modules(
        configs: Vec<InterventionConfig>,
        modules: Vec<PlacedIntervention>,
    ) -> Self {
        Self { configs, modules }
    }

    pub fn configs(&self) -> &[InterventionConfig] {
        &self.configs
    }

    pub fn modules(&self) -> &[PlacedIntervention] {
        &self.modules
    }

    pub fn vars(&self) -> Vec<Var> {
        self.modules
            .iter()
            .flat_map(|m| m.intervention.vars())
            .collect()
    }

    pub fn num_parameters(&self) -> usize {
        self.modules
            .iter()
            .map(|m| m.intervention.num_parameters())
            .sum()
    }

    /// Returns the first layer any module edits. Blocks before it are unchanged.
    pub fn first_layer(&self) -> Option<usize> {
        self.modules.iter().map(|m| m.layer).min()
    }

    /// Restores each module's invariants after an optimizer step.
    pub fn after_step(&self) -> Result<()> {
        for module in &self.modules {
            module.intervention.after_step()?;
        }
        Ok(())
    }

    /// The positions each module edits in each example, given the examples' prompt
    /// lengths and real (unpadded) lengths. With `generating`, tokens produced after the
    /// given ones are edited too by modules whose positions are "all", and by every module
    /// when `edit_generated` is set.
    pub fn row_positions(
        &self,
        lengths: &[(usize, usize)],
        generating: bool,
    ) -> Vec<Vec<RowPositions>> {
        self.row_positions_with(lengths, generating, false)
    }

    /// [`Self::row_positions_with`] for rows that start with `left_padding[row]` padding
    /// tokens (batched generation): every position moves right by the row's padding.
    pub fn row_positions_left_padded(
        &self,
        lengths: &[(usize, usize)],
        left_padding: &[usize],
        generating: bool,
        edit_generated: bool,
    ) -> Vec<Vec<RowPositions>> {
        let mut rows = self.row_positions_with(lengths, generating, edit_generated);
        for module_rows in &mut rows {
            for (positions, &pad) in module_rows.iter_mut().zip(left_padding) {
                for p in &mut positions.fixed {
                    *p += pad;
                }
                if let Some(from) = &mut positions.from {
                    *from += pad;
                }
            }
        }
        rows
    }

    /// [`Self::row_positions`] with the option of editing every generated token.
    pub fn row_positions_with(
        &self,
        lengths: &[(usize, usize)],
        generating: bool,
        edit_generated: bool,
    ) -> Vec<Vec<RowPositions>> {
        self.modules
            .iter()
            .map(|module| {
                let positions = self.configs[module.config_index].positions;
                lengths
                    .iter()
                    .map(|&(prompt_len, total_len)| {
                        let fixed = match module.part {
                            Part::Both => positions.locate_tied(prompt_len, total_len),
                            Part::Prefix => positions.locate(prompt_len, total_len).0,
                            Part::Suffix => positions.locate(prompt_len, total_len).1,
                        };
                        let edits_new_tokens =
                            edit_generated || positions == super::Positions::Every;
                        let from = (generating && edits_new_tokens).then_some(total_len);
                        RowPositions { fixed, from }
                    })
                    .collect()
            })
            .collect()
    }
}
