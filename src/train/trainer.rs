//! The training run: load the model and data, train the interventions with AdamW, report
//! events, and save the adapter. [`spawn`] runs it on a background thread with its own
//! thread pool; [`run`] runs it on the caller's thread (the CLI).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crossbeam_channel::{unbounded, Receiver, Sender, TryRecvError};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::batch::{Batch, TokenizedExample};
use super::checkpoint;
use super::config::TrainConfig;
use super::evaluate::{accuracy, classification_loss, classify, mean_loss};
use super::events::{EvalInfo, Phase, RunSummary, StepInfo, TrainCommand, TrainEvent};
use super::loss::batch_loss;
use super::optimizer::ClippedAdamW;
use super::prefix_cache::PrefixCache;
use super::prepare::eos_id;
use super::run_data::{load_run_data, RunData};
use super::schedule::learning_rate;
use super::shift::ShiftProbe;
use crate::data::Task;
use crate::model::device::open_device;
use crate::model::hub::HubOptions;
use crate::model::loader::{self, LoadedModel};
use crate::reft::adapter::{identity_of, save_adapter, AdapterMetadata, ADAPTER_FORMAT_VERSION};
use crate::reft::InterventionSet;

/// Probe examples used for the representation-shift measurement.
const SHIFT_PROBE_SIZE: usize = 8;

/// A trainer running on its own thread.
pub struct TrainerHandle {
    pub events: Receiver<TrainEvent>,
    commands: Sender<TrainCommand>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrainerHandle {
    /// Asks the run to stop after the current step and keep a usable adapter.
    pub fn stop(&self) {
        let _ = self.commands.send(TrainCommand::Stop);
    }

    /// Asks the run to stop after the current step and save nothing.
    pub fn discard(&self) {
        let _ = self.commands.send(TrainCommand::Discard);
    }

    /// Waits for the thread to end.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a run on a background thread. Its rayon pool has `config.thread_count()` threads,
/// so a GUI keeps a core. The last event is always `Finished` or `Failed`, even when the
/// run panics.
pub fn spawn(config: TrainConfig) -> TrainerHandle {
    let threads = config.thread_count();
    spawn_job(threads, move |events, commands| {
        run(&config, events, commands)
    })
}

/// Runs `job` on a background thread with a rayon pool of `threads` threads, and sends its
/// result as the last event: `Finished`, or `Failed` when it returns an error or panics.
pub fn spawn_job<F>(threads: usize, job: F) -> TrainerHandle
where
    F: FnOnce(&Sender<TrainEvent>, &Receiver<TrainCommand>) -> Result<RunSummary, String>
        + Send
        + 'static,
{
    let (event_tx, event_rx) = unbounded();
    let (command_tx, command_rx) = unbounded();

    let thread = std::thread::Builder::new()
        .name("trainer".into())
        .spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
                    Ok(pool) => pool.install(|| job(&event_tx, &command_rx)),
                    Err(_) => job(&event_tx, &command_rx),
                }
            }));
            let last = match outcome {
                Ok(Ok(summary)) => TrainEvent::Finished(summary),
                Ok(Err(error)) => TrainEvent::Failed { error },
                Err(panic) => TrainEvent::Failed {
                    error: format!(
                        "the trainer stopped unexpectedly: {}",
                        panic_message(&panic)
                    ),
                },
            };
            let _ = event_tx.send(last);
        })
        .expect("the trainer thread starts");

    TrainerHandle {
        events: event_rx,
        commands: command_tx,
        thread: Some(thread),
    }
}

pub(crate) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Sends events and appends them to metrics.jsonl in the output folder.
struct Emitter<'a> {
    events: &'a Sender<TrainEvent>,
    metrics: Option<File>,
}

impl<'a> Emitter<'a> {
    /// Creates the output folder, writes the resolved config into it, and opens
    /// metrics.jsonl there.
    fn for_output(config: &TrainConfig, events: &'a Sender<TrainEvent>) -> Result<Self, String> {
        let output_dir = config.output_dir();
        std::fs::create_dir_all(&output_dir).map_err(|e| {
            format!(
                "could not create the output folder {}: {e}",
                output_dir.display()
            )
        })?;
        let config_path = output_dir.join("config.toml");
        std::fs::write(&config_path, config.resolved().to_toml())
            .map_err(|e| format!("could not write {}: {e}", config_path.display()))?;
        // A resumed run adds to the metrics of the run it continues.
        let metrics = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(config.resume_from.is_some())
            .truncate(config.resume_from.is_none())
            .open(output_dir.join("metrics.jsonl"))
            .ok();
        Ok(Self { events, metrics })
    }

    fn emit(&mut self, event: TrainEvent) {
        if let Some(file) = &mut self.metrics {
            if let Ok(line) = serde_json::to_string(&event) {
                let _ = writeln!(file, "{line}");
            }
        }
        let _ = self.events.send(event);
    }

    fn phase(&mut self, phase: Phase) {
        tracing::info!(?phase, "phase started");
        self.emit(TrainEvent::Phase { phase });
    }

    fn log(&mut self, message: String) {
        tracing::info!("{message}");
        self.emit(TrainEvent::Log { message });
    }
}

/// The reason a run ended before its last step.
enum Interrupt {
    Stop,
    Discard,
}

fn check_commands(commands: &Receiver<TrainCommand>) -> Option<Interrupt> {
    match commands.try_recv() {
        Ok(TrainCommand::Stop) => Some(Interrupt::Stop),
        Ok(TrainCommand::Discard) => Some(Interrupt::Discard),
        Err(TryRecvError::Empty) => None,
        // The handle was dropped, so no command can arrive: finish and save as usual.
        Err(TryRecvError::Disconnected) => None,
    }
}

/// Runs training on the current thread and returns its summary, or a message saying what
/// went wrong and what to do.
pub fn run(
    config: &TrainConfig,
    events: &Sender<TrainEvent>,
    commands: &Receiver<TrainCommand>,
) -> Result<RunSummary, String> {
    config.validate().map_err(|e| e.to_string())?;
    let mut emitter = Emitter::for_output(config, events)?;

    emitter.phase(Phase::LoadingModel);
    let model = load_model(config, &mut emitter)?;
    train_loaded(
        config,
        &model,
        &mut emitter,
        commands,
        &mut PrefixCaches::default(),
    )
    .map(|outcome| outcome.summary)
}

/// A finished run and its trained modules.
pub struct TrainOutcome {
    pub summary: RunSummary,
    pub set: InterventionSet,
}

/// Runs training with a model that is already loaded (the app keeps one loaded between
/// runs) and returns the trained modules along with the summary.
pub fn run_with_model(
    config: &TrainConfig,
    model: &LoadedModel,
    events: &Sender<TrainEvent>,
    commands: &Receiver<TrainCommand>,
) -> Result<TrainOutcome, String> {
    run_with_model_sharing(
        config,
        model,
        events,
        commands,
        &mut PrefixCaches::default(),
    )
}

/// Prefix caches kept between runs. Runs over the same model and data whose first
/// intervened layer is the same reuse them, so the blocks below it run only once for all
/// of them (comparing settings at one layer, for example).
#[derive(Default)]
pub struct PrefixCaches {
    pub train: Option<PrefixCache>,
    pub eval: Option<PrefixCache>,
}

/// Like [`run_with_model`], taking the prefix caches from `caches` when their layer fits and
/// leaving this run's caches there afterwards.
pub fn run_with_model_sharing(
    config: &TrainConfig,
    model: &LoadedModel,
    events: &Sender<TrainEvent>,
    commands: &Receiver<TrainCommand>,
    caches: &mut PrefixCaches,
) -> Result<TrainOutcome, String> {
    config.validate().map_err(|e| e.to_string())?;
    let mut emitter = Emitter::for_output(config, events)?;
    train_loaded(config, model, &mut emitter, commands, caches)
}

fn train_loaded(
    config: &TrainConfig,
    model: &LoadedModel,
    emitter: &mut Emitter,
    commands: &Receiver<TrainCommand>,
    caches: &mut PrefixCaches,
) -> Result<TrainOutcome, String> {
    let started = Instant::now();
    let output_dir = config.output_dir();

    emitter.phase(Phase::Tokenizing);
    let data = load_run_data(config, model)?;
    emitter.log(format!(
        "{} training and {} evaluation examples ({:?})",
        data.train.len(),
        data.eval.len(),
        data.task
    ));
    if data.train_tokens.is_empty() {
        return Err("the training data has no examples".into());
    }

    let model_config = model.config().clone();
    for (i, intervention) in config.interventions.iter().enumerate() {
        intervention
            .validate_for_model(model_config.hidden_size, model_config.num_layers)
            .map_err(|reason| format!("intervention {}: {reason}", i + 1))?;
    }
    let resumed = match &config.resume_from {
        Some(path) => Some(checkpoint::load(path, model)?),
        None => None,
    };
    let set = match &resumed {
        Some(_) => None,
        None => Some(
            InterventionSet::new(
                config.interventions.clone(),
                model_config.hidden_size,
                model_config.num_layers,
                config.training.seed,
                model.decoder.device(),
            )
            .map_err(|e| e.to_string())?,
        ),
    };
    let (set, resume_state) = match resumed {
        Some(checkpoint) => {
            emitter.log(format!(
                "resuming from {} at step {}",
                config
                    .resume_from
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                checkpoint.step
            ));
            (
                checkpoint.set,
                Some((
                    checkpoint.step,
                    checkpoint.optimizer_tensors,
                    checkpoint.updates,
                )),
            )
        }
        None => (set.expect("a fresh set when not resuming"), None),
    };
    emitter.log(format!(
        "{} intervention module(s), {} trainable parameters",
        set.modules().len(),
        set.num_parameters()
    ));

    let mut state = TrainState::new(config, model, &data, &set, caches)?;
    if let Some((step, tensors, updates)) = resume_state {
        state.optimizer.restore(&tensors, updates)?;
        state.step = step;
        state.resumed_at = step;
    }
    emitter.phase(Phase::Training);
    let interrupt = state.train(emitter, commands)?;

    if matches!(interrupt, Some(Interrupt::Discard)) {
        emitter.log("run discarded; no adapter saved".into());
        // A resumed run's folder contains the earlier run's files, so only a fresh run's go.
        if config.resume_from.is_none() {
            remove_run_files(&output_dir);
        }
        let summary = state.summary(None, output_dir, true, started);
        state.return_caches(caches);
        return Ok(TrainOutcome { summary, set });
    }

    emitter.phase(Phase::Evaluating);
    let final_eval = state.evaluate()?;
    if let Some(eval) = &final_eval {
        emitter.emit(TrainEvent::Eval(eval.clone()));
    }

    emitter.phase(Phase::Saving);
    let adapter_path = output_dir.join("adapter.safetensors");
    state.save(&adapter_path, final_eval.as_ref())?;
    let stopped = matches!(interrupt, Some(Interrupt::Stop));
    if stopped {
        emitter.log(format!(
            "stopped at step {}; the adapter saved so far is usable: {}",
            state.step,
            adapter_path.display()
        ));
    }
    let mut summary = state.summary(Some(adapter_path), output_dir, stopped, started);
    summary.final_eval = final_eval;
    state.return_caches(caches);
    Ok(TrainOutcome { summary, set })
}

/// Removes what a discarded run wrote into `dir` (its config, metrics and checkpoints) and
/// the folder itself when nothing else is left in it. Other files are never touched.
fn remove_run_files(dir: &Path) {
    let checkpoints = dir.join("checkpoints");
    if let Ok(entries) = std::fs::read_dir(&checkpoints) {
        for path in entries.filter_map(|entry| entry.ok().map(|entry| entry.path())) {
            let written_here = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("step-") && name.ends_with(".safetensors"));
            if written_here {
                let _ = std::fs::remove_file(&path);
            }
        }
        let _ = std::fs::remove_dir(&checkpoints);
    }
    for name in ["config.toml", "metrics.jsonl"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    // remove_dir fails on a folder that still has files, which keeps anything else safe.
    let _ = std::fs::remove_dir(dir);
}

fn load_model(config: &TrainConfig, emitter: &mut Emitter) -> Result<LoadedModel, String> {
    let mut emit = |event| emitter.emit(event);
    load_model_reporting(&config.model, config.base_dir.as_deref(), &mut emit)
}

/// Loads the model a config's [model] table names, sending download progress as events.
pub fn load_model_reporting(
    section: &crate::train::config::ModelSection,
    base_dir: Option<&Path>,
    emit: &mut dyn FnMut(TrainEvent),
) -> Result<LoadedModel, String> {
    let device = open_device(section.device).map_err(|e| e.to_string())?;
    let mut options = HubOptions::from_env();
    options.offline |= section.offline;
    let mut on_download =
        |event: crate::model::hub::DownloadEvent| emit(TrainEvent::from_download(&event));
    loader::load_spec(
        &section.source,
        base_dir,
        &options,
        &device,
        &mut on_download,
    )
    .map_err(|e| e.to_string())
}

/// Everything that changes while training.
struct TrainState<'a> {
    config: &'a TrainConfig,
    model: &'a LoadedModel,
    data: &'a RunData,
    set: &'a InterventionSet,
    optimizer: ClippedAdamW,
    shift_probe: Option<ShiftProbe>,
    train_prefix: Option<PrefixCache>,
    eval_prefix: Option<PrefixCache>,
    pad_id: u32,
    step: usize,
    total_steps: usize,
    warmup_steps: usize,
    last_loss: Option<f64>,
    tokens_seen: usize,
    started: Instant,
    /// The step a resumed run continues from; 0 for a fresh run.
    resumed_at: usize,
}

impl<'a> TrainState<'a> {
    fn new(
        config: &'a TrainConfig,
        model: &'a LoadedModel,
        data: &'a RunData,
        set: &'a InterventionSet,
        caches: &mut PrefixCaches,
    ) -> Result<Self, String> {
        let training = &config.training;
        let eos = eos_id(model).map_err(|e| e.to_string())?;
        let pad_id = model
            .tokenizer
            .as_ref()
            .and_then(|t| t.pad_id())
            .unwrap_or(eos);

        let batches_per_epoch = data.train_tokens.len().div_ceil(training.batch_size);
        let steps_per_epoch = batches_per_epoch.div_ceil(training.grad_accum).max(1);
        let total_steps = if training.max_steps > 0 {
            training.max_steps
        } else {
            steps_per_epoch * training.epochs
        };
        let warmup_steps = (training.warmup_ratio * total_steps as f64).round() as usize;

        let max_grad_norm = (training.max_grad_norm > 0.0).then_some(training.max_grad_norm);
        let optimizer = ClippedAdamW::new(
            set.vars(),
            training.learning_rate,
            training.weight_decay,
            max_grad_norm,
        )
        .map_err(|e| e.to_string())?;

        let shift_probe = if training.shift_every > 0 {
            let source = if data.eval_tokens.is_empty() {
                &data.train_tokens
            } else {
                &data.eval_tokens
            };
            let probe: Vec<&TokenizedExample> = source.iter().take(SHIFT_PROBE_SIZE).collect();
            let batch = Batch::from_examples(&probe, pad_id, model.decoder.device())
                .map_err(|e| e.to_string())?;
            Some(ShiftProbe::new(&model.decoder, set, batch).map_err(|e| e.to_string())?)
        } else {
            None
        };

        // The cached block is the one the first module edits: its output, and everything
        // below it, stays the same throughout the run.
        let budget = training.prefix_cache_mb * 1024 * 1024;
        let first_layer = set.first_layer();
        let prefix = |kept: Option<PrefixCache>| {
            let layer = first_layer.filter(|_| budget > 0)?;
            Some(
                kept.filter(|cache| cache.layer() == layer)
                    .unwrap_or_else(|| PrefixCache::new(layer, budget)),
            )
        };
        let train_prefix = prefix(caches.train.take());
        let eval_prefix = prefix(caches.eval.take());

        Ok(Self {
            config,
            model,
            data,
            set,
            optimizer,
            shift_probe,
            train_prefix,
            eval_prefix,
            pad_id,
            step: 0,
            total_steps,
            warmup_steps,
            last_loss: None,
            tokens_seen: 0,
            started: Instant::now(),
            resumed_at: 0,
        })
    }

    fn train(
        &mut self,
        emitter: &mut Emitter,
        commands: &Receiver<TrainCommand>,
    ) -> Result<Option<Interrupt>, String> {
        let training = &self.config.training;
        let mut rng = StdRng::seed_from_u64(training.seed);
        let mut order: Vec<usize> = (0..self.data.train_tokens.len()).collect();
        let batches_per_epoch = order.len().div_ceil(training.batch_size);
        let mut epoch = 0usize;
        // A resumed run replays the same shuffles and skips the steps already taken, so it
        // trains on the batches the original run would have seen.
        let mut groups_to_skip = self.resumed_at;

        while self.step < self.total_steps {
            order.shuffle(&mut rng);
            let batches: Vec<&[usize]> = order.chunks(training.batch_size).collect();

            for (group_index, group) in batches.chunks(training.grad_accum).enumerate() {
                if groups_to_skip > 0 {
                    groups_to_skip -= 1;
                    continue;
                }
                if let Some(interrupt) = check_commands(commands) {
                    return Ok(Some(interrupt));
                }
                let info = self.optimizer_step(group, epoch, group_index, batches_per_epoch)?;
                emitter.emit(TrainEvent::Step(info));

                if training.shift_every > 0 && self.step % training.shift_every == 0 {
                    if let Some(probe) = &self.shift_probe {
                        let snapshot = probe
                            .measure(&self.model.decoder, self.set, self.step)
                            .map_err(|e| e.to_string())?;
                        emitter.emit(TrainEvent::Shift(snapshot));
                    }
                }
                if training.eval_every > 0
                    && self.step % training.eval_every == 0
                    && self.step < self.total_steps
                {
                    if let Some(eval) = self.evaluate()? {
                        emitter.emit(TrainEvent::Eval(eval));
                    }
                }
                if training.checkpoint_every > 0
                    && self.step % training.checkpoint_every == 0
                    && self.step < self.total_steps
                {
                    let path = self
                        .config
                        .output_dir()
                        .join("checkpoints")
                        .join(format!("step-{:06}.safetensors", self.step));
                    self.save(&path, None)?;
                    let (tensors, updates) = self.optimizer.state();
                    checkpoint::save_state(&path, self.step, updates, &tensors)?;
                    emitter.emit(TrainEvent::Checkpoint {
                        path,
                        step: self.step,
                    });
                }
                if self.step >= self.total_steps {
                    break;
                }
            }

            epoch += 1;
            if training.eval_every == 0 && self.step < self.total_steps {
                if let Some(eval) = self.evaluate()? {
                    emitter.emit(TrainEvent::Eval(eval));
                }
            }
        }
        Ok(None)
    }

    /// Runs one optimizer step over a group of `grad_accum` batches.
    fn optimizer_step(
        &mut self,
        group: &[&[usize]],
        epoch: usize,
        group_index: usize,
        batches_per_epoch: usize,
    ) -> Result<StepInfo, String> {
        let training = &self.config.training;
        let device = self.model.decoder.device();
        let lr = learning_rate(
            training.schedule,
            training.learning_rate,
            self.step,
            self.total_steps,
            self.warmup_steps,
        );
        self.optimizer.set_learning_rate(lr);

        let step_started = Instant::now();
        let mut grads: Option<candle_core::backprop::GradStore> = None;
        let mut loss_sum = 0.0;
        let mut tokens = 0usize;
        for indices in group {
            let examples: Vec<&TokenizedExample> = indices
                .iter()
                .map(|&i| &self.data.train_tokens[i])
                .collect();
            let batch =
                Batch::from_examples(&examples, self.pad_id, device).map_err(|e| e.to_string())?;
            tokens += batch.token_count;

            let loss = batch_loss(
                &self.model.decoder,
                self.set,
                &batch,
                true,
                self.train_prefix.as_mut(),
            )
            .map_err(|e| e.to_string())?;
            loss_sum += f64::from(loss.to_scalar::<f32>().map_err(|e| e.to_string())?);
            let scaled = (loss / group.len() as f64).map_err(|e| e.to_string())?;
            let batch_grads = scaled.backward().map_err(|e| e.to_string())?;
            match &mut grads {
                None => grads = Some(batch_grads),
                Some(total) => self
                    .optimizer
                    .accumulate(total, &batch_grads)
                    .map_err(|e| e.to_string())?,
            }
        }

        let mut grads = grads.expect("a group has at least one batch");
        let grad_norm = self.optimizer.step(&mut grads).map_err(|e| e.to_string())?;
        self.set.after_step().map_err(|e| e.to_string())?;

        self.step += 1;
        self.tokens_seen += tokens;
        let loss = loss_sum / group.len() as f64;
        if !loss.is_finite() {
            return Err(format!(
                "the loss became {loss} at step {}: training diverged; lower the learning rate (now {lr:.2e}) or the scale",
                self.step
            ));
        }
        self.last_loss = Some(loss);

        let elapsed = self.started.elapsed().as_secs_f64();
        let per_step = elapsed / (self.step - self.resumed_at).max(1) as f64;
        let batches_done = (group_index + 1) * training.grad_accum;
        Ok(StepInfo {
            step: self.step,
            total_steps: self.total_steps,
            epoch: epoch as f64
                + (batches_done.min(batches_per_epoch) as f64 / batches_per_epoch.max(1) as f64),
            loss,
            learning_rate: lr,
            grad_norm,
            tokens_per_second: tokens as f64 / step_started.elapsed().as_secs_f64().max(1e-9),
            elapsed_seconds: elapsed,
            eta_seconds: per_step * (self.total_steps - self.step) as f64,
        })
    }

    /// Loss (and accuracy for classification) on the evaluation examples.
    fn evaluate(&mut self) -> Result<Option<EvalInfo>, String> {
        if self.data.eval_tokens.is_empty() {
            return Ok(None);
        }
        let batch_size = self.config.training.batch_size;
        let (loss, accuracy) = if self.data.task == Task::Classification {
            let scores = classify(
                self.model,
                self.set,
                &self.data.eval,
                &self.data.labels,
                &self.data.settings,
                self.pad_id,
                batch_size,
                self.eval_prefix.as_mut(),
            )
            .map_err(|e| e.to_string())?;
            (
                classification_loss(&scores, &self.data.eval, &self.data.labels),
                Some(accuracy(&scores, &self.data.eval, &self.data.labels)),
            )
        } else {
            let loss = mean_loss(
                self.model,
                self.set,
                &self.data.eval_tokens,
                self.pad_id,
                batch_size,
                self.eval_prefix.as_mut(),
            )
            .map_err(|e| e.to_string())?;
            (loss, None)
        };
        Ok(Some(EvalInfo {
            step: self.step,
            loss,
            accuracy,
            count: self.data.eval_tokens.len(),
        }))
    }

    /// Hands this run's prefix caches back for the next run.
    fn return_caches(&mut self, caches: &mut PrefixCaches) {
        caches.train = self.train_prefix.take();
        caches.eval = self.eval_prefix.take();
    }

    fn save(&self, path: &Path, eval: Option<&EvalInfo>) -> Result<(), String> {
        let mut metrics = std::collections::BTreeMap::new();
        metrics.insert("steps".to_string(), self.step as f64);
        if let Some(loss) = self.last_loss.filter(|l| l.is_finite()) {
            metrics.insert("train_loss".to_string(), loss);
        }
        if let Some(eval) = eval {
            metrics.insert("eval_loss".to_string(), eval.loss);
            if let Some(acc) = eval.accuracy {
                metrics.insert("eval_accuracy".to_string(), acc);
            }
        }
        let metadata = AdapterMetadata {
            format_version: ADAPTER_FORMAT_VERSION,
            name: self.config.run_name(),
            interventions: self.config.interventions.clone(),
            modules: Vec::new(),
            base_model: identity_of(self.model, &self.config.model.source)
                .map_err(|e| e.to_string())?,
            task: self.data.task,
            labels: self.data.labels.clone(),
            prompt_template: self.config.data.prompt_template.clone(),
            system_prompt: self.config.data.system_prompt.clone(),
            training: serde_json::to_value(self.config).ok(),
            metrics,
            created_unix_seconds: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        save_adapter(path, self.set, &metadata).map_err(|e| e.to_string())
    }

    fn summary(
        &self,
        adapter_path: Option<PathBuf>,
        output_dir: PathBuf,
        stopped_early: bool,
        started: Instant,
    ) -> RunSummary {
        RunSummary {
            adapter_path,
            output_dir,
            steps: self.step,
            stopped_early,
            final_train_loss: self.last_loss,
            final_eval: None,
            seconds: started.elapsed().as_secs_f64(),
        }
    }
}
