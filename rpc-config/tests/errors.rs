//! Bad inputs give typed errors naming the file, the line, the section and the option.

mod common;

use common::Scratch;
use rpc_config::{Config, Error, ParseErrorKind, Sources, UrlError};

#[test]
fn bad_boolean() {
    let scratch = Scratch::new("bool");
    let path = scratch.write(
        "nova.conf",
        "[DEFAULT]\n\n[oslo_messaging_rabbit]\n# quorum\nrabbit_quorum_queue = maybe\n",
    );
    let error = Config::from_files(&[&path]).unwrap_err();
    match &error {
        Error::InvalidValue {
            location,
            section,
            option,
            value,
            reason,
        } => {
            assert_eq!((location.path.clone(), location.line), (path.clone(), 5));
            assert_eq!(*section, "oslo_messaging_rabbit");
            assert_eq!(*option, "rabbit_quorum_queue");
            assert_eq!(value.as_deref(), Some("maybe"));
            assert!(reason.contains("boolean"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "{}:5: invalid value \"maybe\" for option `rabbit_quorum_queue` in [oslo_messaging_rabbit]: \
             expected a boolean: true/false, yes/no, on/off or 1/0",
            path.display()
        )
    );
}

#[test]
fn bad_integers() {
    for (text, line, reason) in [
        (
            "[DEFAULT]\nrpc_response_timeout = soon\n",
            2,
            "expected a decimal integer",
        ),
        ("[DEFAULT]\nrpc_response_timeout = -5\n", 2, "must not be negative"),
        ("[DEFAULT]\nrpc_response_timeout =\n", 2, "empty value"),
        ("[DEFAULT]\n\nexecutor_thread_pool_size = 0\n", 3, "must be at least 1"),
        (
            "[oslo_messaging_rabbit]\nrabbit_retry_interval = 0.5\n",
            2,
            "expected a decimal integer",
        ),
        (
            "[oslo_messaging_rabbit]\nkombu_failover_strategy = random\n",
            2,
            "`round-robin` or `shuffle`",
        ),
        (
            "[oslo_messaging_notifications]\nretry = forever\n",
            2,
            "expected a decimal integer",
        ),
    ] {
        match Config::from_text("x.conf", text) {
            Err(Error::InvalidValue {
                location, reason: got, ..
            }) => {
                assert_eq!(location.line, line, "{text}");
                assert!(got.contains(reason), "{text}: {got}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn option_outside_any_section() {
    let scratch = Scratch::new("nosection");
    let path = scratch.write("nova.conf", "# header\ntransport_url = rabbit://\n[DEFAULT]\n");
    match Config::from_files(&[&path]) {
        Err(Error::Parse { path: got, line, kind }) => {
            assert_eq!((got, line, kind), (path.clone(), 2, ParseErrorKind::NoSection));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn parse_errors_carry_the_line() {
    for (text, line, expected) in [
        ("[DEFAULT]\njust some words\n", 2, ParseErrorKind::MissingSeparator),
        ("[DEFAULT\n", 1, ParseErrorKind::UnclosedSection),
        (
            "[DEFAULT]\n\n    orphan continuation\n",
            3,
            ParseErrorKind::UnexpectedContinuation,
        ),
        ("[DEFAULT]\n= value\n", 2, ParseErrorKind::EmptyKey),
    ] {
        match Config::from_text("p.conf", text) {
            Err(Error::Parse { line: got, kind, .. }) => assert_eq!((got, kind), (line, expected), "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn missing_files_are_all_named() {
    let scratch = Scratch::new("missing");
    let present = scratch.write("present.conf", "[DEFAULT]\n");
    let absent = scratch.path("absent.conf");
    let also_absent = scratch.path("also-absent.conf");
    match Config::from_files(&[&absent, &present, &also_absent]) {
        Err(Error::FilesNotFound { paths }) => assert_eq!(paths, [absent.clone(), also_absent.clone()]),
        other => panic!("{other:?}"),
    }
    let message = Config::from_files(&[&absent]).unwrap_err().to_string();
    assert_eq!(message, format!("config files not found: {}", absent.display()));
}

#[test]
fn missing_config_dir() {
    let scratch = Scratch::new("nodir");
    let dir = scratch.path("nova.conf.d");
    match Config::load(&Sources::new().dir(&dir)) {
        Err(Error::DirNotFound { path }) => assert_eq!(path, dir),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_parse_error_in_a_config_dir_names_its_file() {
    let scratch = Scratch::new("dirparse");
    scratch.write("d/10-ok.conf", "[DEFAULT]\n");
    let bad = scratch.write("d/20-bad.conf", "[DEFAULT]\nok = 1\noops\n");
    match Config::load(&Sources::new().dir(scratch.path("d"))) {
        Err(Error::Parse { path, line, kind }) => {
            assert_eq!((path, line, kind), (bad, 3, ParseErrorKind::MissingSeparator));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_scheme_hides_the_password() {
    let error = Config::from_text(
        "nova.conf",
        "[DEFAULT]\n[oslo_messaging_notifications]\ntransport_url = kafka://nova:hunter2@kafka1:9092\n",
    )
    .unwrap_err();
    match &error {
        Error::InvalidTransportUrl {
            location,
            section,
            option,
            url,
            source,
        } => {
            assert_eq!(location.line, 3);
            assert_eq!(*section, "oslo_messaging_notifications");
            assert_eq!(*option, "transport_url");
            assert_eq!(url, "kafka://***@kafka1:9092");
            assert_eq!(source, &UrlError::UnsupportedScheme("kafka".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(!message.contains("hunter2"), "{message}");
    assert!(message.starts_with("nova.conf:3: invalid transport URL"), "{message}");
}

#[test]
fn bad_port_in_the_notification_url() {
    let error = Config::from_text(
        "n.conf",
        "[oslo_messaging_notifications]\ntransport_url = rabbit://u:hunter2@h:notaport/\n",
    )
    .unwrap_err();
    match &error {
        Error::InvalidTransportUrl { option, source, .. } => {
            assert_eq!(*option, "transport_url");
            assert_eq!(source, &UrlError::InvalidPort("h:notaport".to_owned()));
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.to_string().contains("hunter2"), "{error}");
}

#[test]
fn unresolved_dollar_in_a_password() {
    let error = Config::from_text("n.conf", "[DEFAULT]\ntransport_url = rabbit://u:pa$word@h//\n").unwrap_err();
    match &error {
        Error::Substitution {
            location,
            option,
            reference,
            ..
        } => {
            assert_eq!(location.line, 2);
            assert_eq!(*option, "transport_url");
            assert_eq!(reference, "***", "part of a password is not shown");
        }
        other => panic!("{other:?}"),
    }
    let message = error.to_string();
    assert!(message.contains("write `$$` for a literal `$`"), "{message}");
    assert!(!message.contains("word"), "{message}");

    let error = Config::from_text("n.conf", "[DEFAULT]\ncontrol_exchange = $nowhere\n").unwrap_err();
    assert!(
        matches!(&error, Error::Substitution { reference, .. } if reference == "nowhere"),
        "{error:?}"
    );
}

#[test]
fn unreadable_bytes() {
    let scratch = Scratch::new("utf8");
    let path = scratch.path("latin1.conf");
    std::fs::write(&path, b"[DEFAULT]\ncontrol_exchange = caf\xe9\n").unwrap();
    match Config::from_files(&[&path]) {
        Err(Error::Parse { line, kind, .. }) => assert_eq!((line, kind), (2, ParseErrorKind::InvalidUtf8)),
        other => panic!("{other:?}"),
    }
}
