//! The try-it worker: a thread that loads a base model and an adapter once, then runs
//! comparison requests, so the GUI never runs the model on its own thread.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::compare::{compare, CompareRequest, Comparison};
use crate::data::Task;
use crate::model::device::{open_device, DeviceChoice};
use crate::model::hub::HubOptions;
use crate::model::loader::{self, LoadedModel};
use crate::reft::adapter::{load_adapter, read_adapter, LoadedAdapter};
use crate::routing::bundle::ManifestModule;
use crate::routing::{is_routing_file, read_manifest, RoutedSet};
use crate::train::trainer::panic_message;

/// A request to the worker.
#[derive(Debug, Clone)]
pub enum TryCommand {
    /// Loads `adapter` (an adapter file, or a routed set's routing.json) on the model
    /// `model` names (a path or hub id, resolved against `base_dir`); without `model`, the
    /// base model recorded in the adapter or set.
    Load {
        adapter: PathBuf,
        model: Option<String>,
        base_dir: Option<PathBuf>,
    },
    Compare(CompareRequest),
}

/// The name, task and labels of the adapter that [`TryCommand::Load`] loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedInfo {
    pub adapter_name: String,
    pub model_source: String,
    pub task: Task,
    pub labels: Vec<String>,
    /// A routed set's modules, in order; empty for a single adapter.
    pub modules: Vec<ManifestModule>,
    /// A routed set's router accuracy on unseen requests.
    pub router_accuracy: Option<f64>,
}

/// The module that answered a request to a routed set.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteInfo {
    pub module: String,
    /// True when the router chose the module; false when the request named it.
    pub automatic: bool,
    /// The router's probability for every module, in module order.
    pub probabilities: Vec<(String, f64)>,
}

/// A report from the worker, in the order the commands were sent.
#[derive(Debug, Clone)]
pub enum TryEvent {
    Loading,
    Loaded(LoadedInfo),
    /// The comparison, and for a routed set the module that answered.
    Compared(Comparison, Option<RouteInfo>),
    /// A command failed; the worker keeps whatever it had loaded before.
    Failed(String),
}

/// The GUI's side of the worker thread. Dropping it ends the thread.
pub struct TryWorker {
    commands: Option<Sender<TryCommand>>,
    events: Receiver<TryEvent>,
    thread: Option<JoinHandle<()>>,
}

impl TryWorker {
    pub fn send(&self, command: TryCommand) {
        if let Some(commands) = &self.commands {
            // A closed channel means the thread is gone; poll() reports that.
            let _ = commands.send(command);
        }
    }

    /// Returns the events that arrived since the last call.
    pub fn poll(&self) -> Vec<TryEvent> {
        self.events.try_iter().collect()
    }

    /// Blocks until the next event (for tests and the CLI).
    pub fn recv(&self) -> Option<TryEvent> {
        self.events.recv().ok()
    }
}

impl Drop for TryWorker {
    fn drop(&mut self) {
        // Closing the command channel ends the worker's loop after its current request.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a worker that uses `threads` CPU threads and finds hub models with `hub`.
pub fn spawn_try_worker(hub: HubOptions, threads: usize) -> TryWorker {
    let (command_tx, command_rx) = unbounded::<TryCommand>();
    let (event_tx, event_rx) = unbounded();

    let thread = std::thread::Builder::new()
        .name("try-it".into())
        .spawn(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads.max(1))
                .build()
                .ok();
            let mut state = WorkerState {
                hub,
                model: None,
                loaded: None,
            };
            for command in command_rx {
                if matches!(command, TryCommand::Load { .. }) {
                    let _ = event_tx.send(TryEvent::Loading);
                }
                let handled =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &pool {
                        Some(pool) => pool.install(|| state.handle(command)),
                        None => state.handle(command),
                    }));
                let event = match handled {
                    Ok(Ok(event)) => event,
                    Ok(Err(error)) => TryEvent::Failed(error),
                    Err(panic) => TryEvent::Failed(format!(
                        "the try-it worker failed unexpectedly: {}",
                        panic_message(&panic)
                    )),
                };
                let _ = event_tx.send(event);
            }
        })
        .expect("the try-it thread starts");

    TryWorker {
        commands: Some(command_tx),
        events: event_rx,
        thread: Some(thread),
    }
}

/// The worker's state between commands.
struct WorkerState {
    hub: HubOptions,
    /// The model and the spec it was loaded from.
    model: Option<(String, LoadedModel)>,
    /// The adapter or routed set on that model.
    loaded: Option<Loaded>,
}

enum Loaded {
    Adapter(LoadedAdapter),
    Routed(RoutedSet),
}

impl WorkerState {
    fn handle(&mut self, command: TryCommand) -> Result<TryEvent, String> {
        match command {
            TryCommand::Load {
                adapter,
                model,
                base_dir,
            } => self.load(&adapter, model, base_dir.as_deref()),
            TryCommand::Compare(request) => {
                let (Some((_, model)), Some(loaded)) = (&self.model, &self.loaded) else {
                    return Err("no adapter is loaded yet: choose an adapter file first".into());
                };
                match loaded {
                    Loaded::Adapter(adapter) => {
                        compare(model, adapter, &request).map(|c| TryEvent::Compared(c, None))
                    }
                    Loaded::Routed(set) => compare_routed(model, set, &request),
                }
            }
        }
    }

    fn load(
        &mut self,
        path: &Path,
        model: Option<String>,
        base_dir: Option<&Path>,
    ) -> Result<TryEvent, String> {
        let (name, recorded_source) = if is_routing_file(path) {
            let manifest = read_manifest(path)?;
            (manifest.name, manifest.model_source)
        } else {
            let (metadata, _) = read_adapter(path).map_err(|e| e.to_string())?;
            (metadata.name, metadata.base_model.source)
        };
        let spec = model
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| recorded_source.clone());
        self.loaded = None;

        // Loading the model is the slow part, so a new adapter on the same model reuses it.
        if self
            .model
            .as_ref()
            .is_none_or(|(loaded, _)| *loaded != spec)
        {
            self.model = None;
            let device = open_device(DeviceChoice::Cpu).map_err(|e| e.to_string())?;
            let model = loader::load_spec(&spec, base_dir, &self.hub, &device, &mut |_| {})
                .map_err(|e| {
                    format!(
                        "{e} (the adapter was trained on {recorded_source:?}; choose that model)"
                    )
                })?;
            self.model = Some((spec.clone(), model));
        }
        let (_, model) = self.model.as_ref().expect("loaded above");

        if is_routing_file(path) {
            let set = RoutedSet::load(path, model)?;
            let first = set
                .adapters
                .first()
                .ok_or("the routed set has no modules")?;
            let info = LoadedInfo {
                adapter_name: name,
                model_source: spec,
                task: first.metadata.task,
                labels: first.metadata.labels.clone(),
                modules: set.manifest.modules.clone(),
                router_accuracy: set.manifest.report.eval_accuracy,
            };
            self.loaded = Some(Loaded::Routed(set));
            return Ok(TryEvent::Loaded(info));
        }

        let adapter = load_adapter(path, model).map_err(|e| e.to_string())?;
        let info = LoadedInfo {
            adapter_name: adapter.metadata.name.clone(),
            model_source: spec,
            task: adapter.metadata.task,
            labels: adapter.metadata.labels.clone(),
            modules: Vec::new(),
            router_accuracy: None,
        };
        self.loaded = Some(Loaded::Adapter(adapter));
        Ok(TryEvent::Loaded(info))
    }
}

/// Sends the request to the module it names, or to the one the router picks.
fn compare_routed(
    model: &LoadedModel,
    set: &RoutedSet,
    request: &CompareRequest,
) -> Result<TryEvent, String> {
    if request.prompt.trim().is_empty() {
        return Err("the prompt is empty: type a prompt to compare".into());
    }
    let decision = set.route(model, &request.prompt)?;
    let (index, automatic) = match &request.module {
        Some(name) => (set.module_index(name)?, false),
        None => (decision.module, true),
    };

    let comparison = compare(model, &set.adapters[index], request)?;
    let names = set.manifest.modules.iter().map(|m| m.name.clone());
    let route = RouteInfo {
        module: set.manifest.modules[index].name.clone(),
        automatic,
        probabilities: names.zip(decision.probabilities).collect(),
    };
    Ok(TryEvent::Compared(comparison, Some(route)))
}
