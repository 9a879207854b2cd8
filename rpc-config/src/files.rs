//! Config files and config directories: which files are read, in which order.
//!
//! oslo.config parses `--config-file` and `--config-dir` arguments as argparse
//! actions, one after the other in the order of the command line
//! (`_ConfigFileOpt.ConfigFileAction`, `_ConfigDirOpt.ConfigDirAction` in
//! `oslo_config/cfg.py`): a directory's files are parsed after the files
//! given before it and before those given after it, and later files win.
//! [`Sources`] keeps that order: add the sources as the command line gives
//! them (`--config-file a --config-file b --config-dir d` is
//! `Sources::new().file(a).file(b).dir(d)`).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::ini::{self, IniFile};

/// One place to read configuration from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A config file (`--config-file`).
    File(PathBuf),
    /// A config directory (`--config-dir`): its `*.conf` files, sorted by
    /// name, skipping hidden files (whose names start with `.`) and directories.
    Dir(PathBuf),
}

/// The config files and directories to read, in order: later ones override earlier ones.
///
/// ```
/// use rpc_config::Sources;
/// let sources = Sources::new()
///     .file("/etc/nova/nova.conf")
///     .dir("/etc/nova/nova.conf.d");
/// assert_eq!(sources.as_slice().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sources {
    items: Vec<Source>,
}

impl Sources {
    /// No sources: a configuration of defaults only.
    pub fn new() -> Sources {
        Sources::default()
    }

    /// Adds a config file, read after the sources added so far.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Sources {
        self.push(Source::File(path.into()));
        self
    }

    /// Adds a config directory, whose `*.conf` files are read, sorted by
    /// name, after the sources added so far.
    pub fn dir(mut self, path: impl Into<PathBuf>) -> Sources {
        self.push(Source::Dir(path.into()));
        self
    }

    /// Adds a source, read after the sources added so far. A path starting
    /// with `~` is in the home directory, as oslo.config expands it (a shell
    /// does not, after `--config-file=`).
    pub fn push(&mut self, source: Source) {
        self.items.push(match source {
            Source::File(path) => Source::File(expand_home(path)),
            Source::Dir(path) => Source::Dir(expand_home(path)),
        });
    }

    /// The sources, in order.
    pub fn as_slice(&self) -> &[Source] {
        &self.items
    }

    /// The files that would be read, in order, with the directories listed
    /// now. Files are not opened: a missing file is listed, a missing
    /// directory is an error.
    pub fn resolve(&self) -> Result<Vec<PathBuf>, Error> {
        let mut files = Vec::new();
        for source in &self.items {
            match source {
                Source::File(path) => files.push(path.clone()),
                Source::Dir(dir) => files.extend(list_dir(dir)?),
            }
        }
        Ok(files)
    }
}

impl<P: AsRef<Path>> FromIterator<P> for Sources {
    /// Config files, in order.
    fn from_iter<I: IntoIterator<Item = P>>(files: I) -> Sources {
        Sources {
            items: files
                .into_iter()
                .map(|path| Source::File(path.as_ref().to_path_buf()))
                .collect(),
        }
    }
}

/// A project's default config file: the first of `~/.PROJECT/PROJECT.conf`,
/// `~/PROJECT.conf`, `/etc/PROJECT/PROJECT.conf` and `/etc/PROJECT.conf`
/// that exists, as oslo.config's `find_config_files(project)` finds it (a
/// service reads it when its command line gives no `--config-file`).
/// oslo also looks for the program's own name (`nova-compute.conf`), and
/// under `$SNAP`; these are not searched.
pub fn find_config_files(project: &str) -> Vec<PathBuf> {
    find(project, ".conf")
}

/// A project's default config directory: the first of the directories
/// [`find_config_files`] searches that holds a `PROJECT.conf.d`, as
/// oslo.config's `find_config_dirs(project)` (read when the command line
/// gives no `--config-dir`).
pub fn find_config_dirs(project: &str) -> Vec<PathBuf> {
    find(project, ".conf.d")
}

/// The first `PROJECT<extension>` in the project's search directories.
fn find(project: &str, extension: &str) -> Vec<PathBuf> {
    first_existing(
        &search_dirs(project, home().as_deref()),
        &format!("{project}{extension}"),
    )
    .into_iter()
    .collect()
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

/// oslo.config's `_get_config_dirs(project)`, without the snap paths.
fn search_dirs(project: &str, home: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(home) = home {
        dirs.push(home.join(format!(".{project}")));
        dirs.push(home.to_path_buf());
    }
    dirs.push(Path::new("/etc").join(project));
    dirs.push(PathBuf::from("/etc"));
    dirs
}

/// `~` and `~/...` in the home directory (`$HOME`), as Python's `expanduser`.
fn expand_home(path: PathBuf) -> PathBuf {
    let Ok(rest) = path.strip_prefix("~") else {
        return path;
    };
    match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home).join(rest),
        None => path,
    }
}

/// The first `dir/name` that exists, as oslo's `_search_dirs`.
fn first_existing(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    dirs.iter().map(|dir| dir.join(name)).find(|path| path.exists())
}

/// The `*.conf` files of a directory, as oslo's `sorted(glob.glob(os.path.join(dir, '*.conf')))`.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    if !dir.exists() {
        return Err(Error::DirNotFound {
            path: dir.to_path_buf(),
        });
    }
    let io_error = |source: io::Error| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error)? {
        let name = entry.map_err(io_error)?.file_name();
        let bytes = name.as_encoded_bytes();
        // glob's `*` never matches a leading dot.
        if bytes.ends_with(b".conf") && !bytes.starts_with(b".") {
            names.push(name);
        }
    }
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    Ok(names
        .into_iter()
        .map(|name| dir.join(name))
        // A directory named `x.conf` is not a config file (oslo would fail to open it).
        .filter(|path| !path.is_dir())
        .collect())
}

/// Reads and parses every file of the sources, in order.
///
/// As oslo.config does, missing and unreadable files do not stop the
/// reading: they are reported together at the end (missing ones first),
/// while a file that cannot be parsed, or a missing directory, fails at once.
pub(crate) fn read_sources(sources: &Sources) -> Result<Vec<(PathBuf, IniFile)>, Error> {
    let mut parsed = Vec::new();
    let mut missing = Vec::new();
    let mut denied = Vec::new();
    for source in sources.as_slice() {
        let files = match source {
            Source::File(path) => vec![path.clone()],
            Source::Dir(dir) => list_dir(dir)?,
        };
        for path in files {
            match fs::read(&path) {
                Ok(bytes) => {
                    let file = ini::parse_bytes(&path, &bytes)?;
                    parsed.push((path, file));
                }
                Err(error) if error.kind() == io::ErrorKind::NotFound => missing.push(path),
                Err(error) if error.kind() == io::ErrorKind::PermissionDenied => denied.push(path),
                Err(source) => return Err(Error::Io { path, source }),
            }
        }
    }
    if !missing.is_empty() {
        return Err(Error::FilesNotFound { paths: missing });
    }
    if !denied.is_empty() {
        return Err(Error::PermissionDenied { paths: denied });
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tilde_is_the_home_directory() {
        let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
        let sources = Sources::new().file("~/nova.conf").dir("~").file("/etc/~/x.conf");
        assert_eq!(
            sources.as_slice(),
            [
                Source::File(home.join("nova.conf")),
                Source::Dir(home.clone()),
                Source::File(PathBuf::from("/etc/~/x.conf"))
            ]
        );
    }

    #[test]
    fn a_project_s_files_are_searched_in_oslo_s_order() {
        let home = std::env::temp_dir().join(format!("rpc-config-home-{}", std::process::id()));
        let dirs = search_dirs("nova", Some(&home));
        assert_eq!(
            dirs,
            [
                home.join(".nova"),
                home.clone(),
                PathBuf::from("/etc/nova"),
                PathBuf::from("/etc")
            ]
        );
        fs::create_dir_all(home.join(".nova")).unwrap();
        assert_eq!(first_existing(&dirs, "nova.conf"), None);
        fs::write(home.join("nova.conf"), "").unwrap();
        assert_eq!(first_existing(&dirs, "nova.conf"), Some(home.join("nova.conf")));
        // The project's own directory first.
        fs::write(home.join(".nova/nova.conf"), "").unwrap();
        assert_eq!(first_existing(&dirs, "nova.conf"), Some(home.join(".nova/nova.conf")));
        fs::create_dir_all(home.join("nova.conf.d")).unwrap();
        assert_eq!(first_existing(&dirs, "nova.conf.d"), Some(home.join("nova.conf.d")));
        fs::remove_dir_all(&home).unwrap();
        assert_eq!(
            search_dirs("nova", None),
            [PathBuf::from("/etc/nova"), PathBuf::from("/etc")]
        );
    }
}
