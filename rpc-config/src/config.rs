//! The merged configuration: every value of every file, with where it came from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Location};
use crate::files::{self, Sources};
use crate::ini::{self, IniFile};
use crate::options::{self, DeprecatedOption, IgnoredOption, Options};

/// The name of oslo.config's default section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// oslo.config's `_normalize_group_name`: section names are case-insensitive,
/// except `DEFAULT` (so `[default]` is a section of its own, not `[DEFAULT]`).
pub(crate) fn normalize_section(name: &str) -> String {
    if name == DEFAULT_SECTION {
        name.to_owned()
    } else {
        name.to_lowercase()
    }
}

/// Every value an option was given, across all files, in parse order.
///
/// For a single-valued option the effective value is the last one: the last
/// line of the last file that sets it. A multi-valued option (a
/// `MultiStrOpt`, such as `[oslo_messaging_notifications] driver`) takes
/// them all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    values: Vec<String>,
    locations: Vec<Location>,
    /// The position in the parse order of each value's file: later files win.
    files: Vec<usize>,
}

impl Setting {
    /// The effective value of a single-valued option: the last one written.
    pub fn value(&self) -> &str {
        self.values.last().map_or("", String::as_str)
    }

    /// Where [`value`](Setting::value) was written.
    pub fn location(&self) -> Option<&Location> {
        self.locations.last()
    }

    /// All the values, in parse order (files in order, lines in order).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Where each of [`values`](Setting::values) was written.
    pub fn locations(&self) -> &[Location] {
        &self.locations
    }

    /// Each value with its location and the position of its file in the parse order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (&str, &Location, usize)> {
        self.values
            .iter()
            .zip(&self.locations)
            .zip(&self.files)
            .map(|((value, location), file)| (value.as_str(), location, *file))
    }
}

/// One section (oslo's option group) merged across files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    name: String,
    options: BTreeMap<String, Setting>,
}

impl Section {
    /// The section's normalized name (`DEFAULT`, or lower case).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// An option's values (option names are case-sensitive).
    pub fn get(&self, option: &str) -> Option<&Setting> {
        self.options.get(option)
    }

    /// The options set in this section, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Setting)> {
        self.options.iter().map(|(name, setting)| (name.as_str(), setting))
    }

    /// Whether no option is set in this section (its header alone was written).
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }
}

/// A loaded configuration: the raw values of every section, with their
/// origins, and the oslo.messaging options typed.
///
/// ```
/// use rpc_config::Config;
/// let config = Config::from_text(
///     "nova.conf",
///     "[DEFAULT]\ntransport_url = rabbit://nova:secret@rabbit1:5672/\n\
///      [oslo_messaging_rabbit]\nrabbit_quorum_queue = true\n",
/// )?;
/// assert!(config.options().rabbit.rabbit_quorum_queue);
/// assert_eq!(config.get("DEFAULT", "transport_url"), Some("rabbit://nova:secret@rabbit1:5672/"));
/// let url = config.options().default.transport_url.as_ref().unwrap();
/// assert_eq!(url.to_string(), "rabbit://nova:***@rabbit1:5672/");
/// # Ok::<(), rpc_config::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Config {
    files: Vec<PathBuf>,
    sections: BTreeMap<String, Section>,
    options: Options,
    ignored: Vec<IgnoredOption>,
    deprecated: Vec<DeprecatedOption>,
}

impl Config {
    /// Reads the sources in order (see [`Sources`]) and types the options.
    pub fn load(sources: &Sources) -> Result<Config, Error> {
        Config::from_parsed(files::read_sources(sources)?)
    }

    /// Reads config files in order, later files overriding earlier ones, as
    /// `--config-file` given once per file.
    pub fn from_files<P: AsRef<Path>>(files: &[P]) -> Result<Config, Error> {
        Config::load(&files.iter().collect())
    }

    /// Parses one file's text; `name` stands for its path in locations and errors.
    pub fn from_text(name: impl Into<PathBuf>, text: &str) -> Result<Config, Error> {
        let name = name.into();
        let file = ini::parse_str(&name, text)?;
        Config::from_parsed(vec![(name, file)])
    }

    fn from_parsed(parsed: Vec<(PathBuf, IniFile)>) -> Result<Config, Error> {
        let mut sections: BTreeMap<String, Section> = BTreeMap::new();
        let mut files = Vec::with_capacity(parsed.len());
        for (index, (path, file)) in parsed.into_iter().enumerate() {
            for name in &file.sections {
                let name = normalize_section(name);
                sections.entry(name.clone()).or_insert_with(|| Section {
                    name,
                    options: BTreeMap::new(),
                });
            }
            for entry in file.entries {
                let name = normalize_section(&entry.section);
                let section = sections.entry(name.clone()).or_insert_with(|| Section {
                    name,
                    options: BTreeMap::new(),
                });
                let setting = section.options.entry(entry.key).or_insert_with(|| Setting {
                    values: Vec::new(),
                    locations: Vec::new(),
                    files: Vec::new(),
                });
                setting.values.push(entry.value);
                setting.locations.push(Location {
                    path: path.clone(),
                    line: entry.line,
                });
                setting.files.push(index);
            }
            files.push(path);
        }
        let mut config = Config {
            files,
            sections,
            options: Options::default(),
            ignored: Vec::new(),
            deprecated: Vec::new(),
        };
        let typed = options::read(&config)?;
        config.options = typed.options;
        config.ignored = typed.ignored;
        config.deprecated = typed.deprecated;
        Ok(config)
    }

    /// The service's own default exchange, as an OpenStack service sets it
    /// in code with oslo's `set_transport_defaults(control_exchange=...)`
    /// (nova: `nova`), for when the files do not set `control_exchange`:
    /// the transport, clients and servers built from this configuration
    /// then use it, as the service's Python processes do. (A
    /// `$control_exchange` reference in the files still reads oslo's
    /// default, `openstack`.)
    ///
    /// ```
    /// # use rpc_config::Config;
    /// let config = Config::from_text("nova.conf", "[DEFAULT]\ntransport_url = rabbit://h/\n")?
    ///     .with_default_control_exchange("nova");
    /// assert_eq!(config.options().default.control_exchange, "nova");
    /// assert!(config.rpc_url().contains("control_exchange=nova"));
    /// # Ok::<(), rpc_config::Error>(())
    /// ```
    pub fn with_default_control_exchange(mut self, exchange: impl Into<String>) -> Config {
        self.options.default_control_exchange(exchange.into());
        self
    }

    /// The files read, in parse order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The oslo.messaging options, typed, with oslo's defaults for those not set.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Options of `[oslo_messaging_rabbit]` and `[oslo_messaging_notifications]`
    /// that have no effect here: unknown to oslo.messaging (a typo, or a newer
    /// option), or known but not used by this framework's transport; and
    /// retired names set anywhere (`[DEFAULT] notification_driver`, read by
    /// older oslo.messaging releases only). For the caller to log: the
    /// retired names first, then the rabbit section's, then the
    /// notifications section's, each sorted by section and option.
    pub fn ignored_options(&self) -> &[IgnoredOption] {
        &self.ignored
    }

    /// Options set under a deprecated name or section that oslo.messaging
    /// still honours (oslo logs a deprecation warning for each).
    pub fn deprecated_options(&self) -> &[DeprecatedOption] {
        &self.deprecated
    }

    /// The effective value of an option, raw as written (the last one), or
    /// `None` if no file sets it. Section names are matched as oslo.config
    /// matches them (see [`Config::section`]); no `$` substitution is done.
    pub fn get(&self, section: &str, option: &str) -> Option<&str> {
        self.setting(section, option).map(Setting::value)
    }

    /// All the values of an option, raw, in parse order (empty if unset):
    /// the values of a multi-valued option.
    pub fn get_all(&self, section: &str, option: &str) -> &[String] {
        self.setting(section, option).map_or(&[], Setting::values)
    }

    /// Where the effective value of an option was written.
    pub fn location(&self, section: &str, option: &str) -> Option<&Location> {
        self.setting(section, option).and_then(Setting::location)
    }

    /// An option's values with their locations.
    pub fn setting(&self, section: &str, option: &str) -> Option<&Setting> {
        self.section(section)?.get(option)
    }

    /// A section merged across files. Names are case-insensitive except
    /// `DEFAULT`, as in oslo.config: `[Oslo_Messaging_Rabbit]` and
    /// `[oslo_messaging_rabbit]` are one section, `[default]` is not `[DEFAULT]`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.get(&normalize_section(name))
    }

    /// Every section of every file, sorted by normalized name.
    pub fn sections(&self) -> impl Iterator<Item = &Section> {
        self.sections.values()
    }
}
