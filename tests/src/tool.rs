//! Running the outside tools the harness relies on (sox, espeak-ng, garage),
//! turning "not installed" and "exited non-zero" into errors that say what to do.

use std::process::{Command, Output};

use crate::error::HarnessError;
use crate::Result;

/// Apt command that installs the audio tools.
pub(crate) const APT_AUDIO: &str = "apt-get install -y sox libsox-fmt-mp3 espeak-ng";

/// Runs `cmd` to completion; a missing program or a non-zero exit is an error
/// carrying the command line and its stderr.
pub(crate) fn run(cmd: &mut Command, install: &str) -> Result<Output> {
    let command = format!("{cmd:?}");
    let output = cmd.output().map_err(|source| HarnessError::ToolMissing {
        tool: cmd.get_program().to_string_lossy().into_owned(),
        install: install.to_string(),
        source,
    })?;
    if !output.status.success() {
        return Err(HarnessError::ToolFailed {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    Ok(output)
}
