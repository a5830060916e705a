//! Operator PINs, kept off the command line: `ps` and `/proc/PID/cmdline` show every process's
//! arguments to every local user, so `--operator` names the operator only and the PIN comes from
//! `$POSCTL_OPERATOR_PIN`, the first line of `--pin-file FILE` (`/dev/fd/N` for a descriptor the
//! caller opened, `-` for standard input), or a prompt on the terminal that does not echo it.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use posbridge_wire::{Credential, OperatorAuth, OperatorSecret};

use crate::commands::{Failure, usage};

/// The variable a script sets to the operator's PIN.
pub(crate) const PIN_VARIABLE: &str = "POSCTL_OPERATOR_PIN";

/// The operator `name` with the PIN from `pin_file`, the environment or a prompt (in that
/// order). A `NAME:PIN` given as the name is refused: the PIN would be in the process list.
pub(crate) fn operator(name: &str, pin_file: Option<&Path>) -> Result<OperatorAuth, Failure> {
    if name.contains(':') {
        return Err(usage(format!(
            "--operator takes the operator's name only: a PIN on the command line is visible to \
             every local user (ps). Give the PIN in ${PIN_VARIABLE}, with --pin-file FILE, or at \
             the prompt"
        )));
    }
    if name.is_empty() {
        return Err(usage("--operator: the operator's name is empty"));
    }
    let pin = match pin_file {
        Some(path) => read_pin_file(path)?,
        None => match std::env::var(PIN_VARIABLE) {
            Ok(pin) => pin,
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(usage(format!("${PIN_VARIABLE} is not text")));
            }
            Err(std::env::VarError::NotPresent) => prompt(name)?,
        },
    };
    let pin = OperatorSecret::new(pin.trim_end_matches(['\r', '\n'])).map_err(|_| {
        usage(format!(
            "the PIN for operator {name:?} must be 4 to 12 digits"
        ))
    })?;
    Ok(OperatorAuth {
        operator_id: name.into(),
        credential: Credential::Pin(pin),
    })
}

fn read_pin_file(path: &Path) -> Result<String, Failure> {
    let mut line = String::new();
    let read = if path == Path::new("-") {
        std::io::stdin().lock().read_line(&mut line)
    } else {
        std::fs::File::open(path).and_then(|f| std::io::BufReader::new(f).read_line(&mut line))
    };
    match read {
        Ok(0) => Err(usage(format!("--pin-file {}: empty", path.display()))),
        Ok(_) => Ok(line),
        Err(e) => Err(usage(format!("--pin-file {}: {e}", path.display()))),
    }
}

fn prompt(name: &str) -> Result<String, Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "operator {name:?} needs a PIN: set ${PIN_VARIABLE}, pass --pin-file FILE, or run \
             posctl at a terminal to be asked for it"
        )));
    }
    rpassword::prompt_password(format!("PIN for operator {name}: "))
        .map_err(|e| usage(format!("reading the PIN: {e}")))
}

/// The text of a file that holds a secret (a shared key's passphrase), refused when other
/// users may read it.
pub(crate) fn read_private(path: &Path, option: &str) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("{option} {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| usage(format!("{option} {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(usage(format!(
                "{option} {}: readable by other users (mode {:o}); fix with `chmod go-rwx {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    Ok(text)
}
