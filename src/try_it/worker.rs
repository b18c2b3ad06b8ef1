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
use crate::train::trainer::panic_message;

/// A request to the worker.
#[derive(Debug, Clone)]
pub enum TryCommand {
    /// Loads `adapter` on the model `model` names (a path or hub id, resolved against
    /// `base_dir`); without `model`, the base model recorded in the adapter.
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
}

/// A report from the worker, in the order the commands were sent.
#[derive(Debug, Clone)]
pub enum TryEvent {
    Loading,
    Loaded(LoadedInfo),
    Compared(Comparison),
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
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build().ok();
            let mut state = WorkerState {
                hub,
                model: None,
                adapter: None,
            };
            for command in command_rx {
                if matches!(command, TryCommand::Load { .. }) {
                    let _ = event_tx.send(TryEvent::Loading);
                }
                let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &pool {
                    Some(pool) => pool.install(|| state.handle(command)),
                    None => state.handle(command),
                }));
                let event = match handled {
                    Ok(Ok(event)) => event,
                    Ok(Err(error)) => TryEvent::Failed(error),
                    Err(panic) => TryEvent::Failed(format!("the try-it worker failed unexpectedly: {}", panic_message(&panic))),
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
    /// The adapter on that model.
    adapter: Option<LoadedAdapter>,
}

impl WorkerState {
    fn handle(&mut self, command: TryCommand) -> Result<TryEvent, String> {
        match command {
            TryCommand::Load { adapter, model, base_dir } => self.load(&adapter, model, base_dir.as_deref()),
            TryCommand::Compare(request) => {
                let (Some((_, model)), Some(adapter)) = (&self.model, &self.adapter) else {
                    return Err("no adapter is loaded yet: choose an adapter file first".into());
                };
                compare(model, adapter, &request).map(TryEvent::Compared)
            }
        }
    }

    fn load(&mut self, adapter_path: &Path, model: Option<String>, base_dir: Option<&Path>) -> Result<TryEvent, String> {
        let (metadata, _) = read_adapter(adapter_path).map_err(|e| e.to_string())?;
        let spec = model
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| metadata.base_model.source.clone());
        self.adapter = None;

        // Loading the model is the slow part, so a new adapter on the same model reuses it.
        if self.model.as_ref().is_none_or(|(loaded, _)| *loaded != spec) {
            self.model = None;
            let device = open_device(DeviceChoice::Cpu).map_err(|e| e.to_string())?;
            let model = loader::load_spec(&spec, base_dir, &self.hub, &device, &mut |_| {}).map_err(|e| {
                format!("{e} (the adapter was trained on {:?}; choose that model)", metadata.base_model.source)
            })?;
            self.model = Some((spec.clone(), model));
        }
        let (_, model) = self.model.as_ref().expect("loaded above");
        let adapter = load_adapter(adapter_path, model).map_err(|e| e.to_string())?;

        let info = LoadedInfo {
            adapter_name: adapter.metadata.name.clone(),
            model_source: spec,
            task: adapter.metadata.task,
            labels: adapter.metadata.labels.clone(),
        };
        self.adapter = Some(adapter);
        Ok(TryEvent::Loaded(info))
    }
}
