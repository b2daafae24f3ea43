//! *Start at login*. On Linux Hoist writes its XDG autostart entry itself
//! (`$XDG_CONFIG_HOME/autostart/hoist.desktop`): the autostart plugin's writer put the
//! executable's path into `Exec=` unquoted (a path with a space, a quote or a `$` broke the
//! entry or reached the desktop's command line as it was) and left the file's mode to the
//! umask (#29, finding 13). Elsewhere the plugin does the job (a login item on macOS, a Run key
//! on Windows).

use tauri::AppHandle;

/// Started at login: the app waits in the tray instead of opening its window.
pub(crate) const HIDDEN: &str = "--hidden";

/// Whether Hoist starts at login.
pub(crate) fn is_enabled(app: &AppHandle) -> bool {
    imp::is_enabled(app)
}

/// Makes Hoist start at login (`on`), or not.
pub(crate) fn set(app: &AppHandle, on: bool) -> Result<(), String> {
    imp::set(app, on)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::path::{Path, PathBuf};

    use tauri::AppHandle;

    fn entry_path() -> Option<PathBuf> {
        Some(dirs::config_dir()?.join("autostart").join("hoist.desktop"))
    }

    pub(super) fn is_enabled(_: &AppHandle) -> bool {
        entry_path().is_some_and(|p| p.exists())
    }

    pub(super) fn set(_: &AppHandle, on: bool) -> Result<(), String> {
        let path = entry_path().ok_or("this account has no config folder")?;
        if !on {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            };
        }
        let exe = std::env::current_exe().map_err(|e| format!("cannot find Hoist itself: {e}"))?;
        let exe = exe.to_str().ok_or("Hoist's path is not UTF-8")?;
        write_entry(&path, &entry(exe)?)
    }

    /// The autostart entry that starts `exe` in the tray.
    pub(super) fn entry(exe: &str) -> Result<String, String> {
        Ok(format!(
            "[Desktop Entry]\nType=Application\nVersion=1.0\nName=Hoist\n\
             Comment=Uploads files to the company's storage\nExec={} {}\n\
             StartupNotify=false\nTerminal=false\nX-GNOME-Autostart-enabled=true\n",
            exec_arg(exe)?,
            super::HIDDEN
        ))
    }

    /// One argument of `Exec=` as the Desktop Entry specification wants it: `%` doubled (it
    /// starts field codes), quoted when it holds a reserved character (inside the quotes `"`,
    /// `` ` ``, `$` and `\` escaped), and the backslashes escaped once more, since the value is
    /// itself a desktop-entry string. A line break cannot be written at all.
    pub(super) fn exec_arg(arg: &str) -> Result<String, String> {
        if arg.contains(['\n', '\r']) {
            return Err("Hoist's path holds a line break: it cannot start at login".into());
        }
        let arg = arg.replace('%', "%%");
        let reserved = |c: char| " \t\"'\\><~|&;$*?#()`".contains(c);
        let quoted = if arg.contains(reserved) {
            let mut q = String::from("\"");
            for c in arg.chars() {
                if matches!(c, '"' | '`' | '$' | '\\') {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        } else {
            arg
        };
        Ok(quoted.replace('\\', "\\\\"))
    }

    /// Writes `text` to `path` readable by everyone and writable by its owner only (0644),
    /// whatever the umask and whatever mode an earlier file had.
    pub(super) fn write_entry(path: &Path, text: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use tauri::AppHandle;
    use tauri_plugin_autostart::ManagerExt as _;

    pub(super) fn is_enabled(app: &AppHandle) -> bool {
        app.autolaunch().is_enabled().unwrap_or(false)
    }

    pub(super) fn set(app: &AppHandle, on: bool) -> Result<(), String> {
        let autolaunch = app.autolaunch();
        let done = if on {
            autolaunch.enable()
        } else {
            autolaunch.disable()
        };
        done.map_err(|e| e.to_string())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::imp::{entry, exec_arg, write_entry};

    /// Regression (#29, finding 13): the entry held `Exec=<path> --hidden` with the path
    /// unquoted, and kept whatever mode the umask or an earlier file gave it.
    #[test]
    fn the_autostart_entry_quotes_the_path_and_is_0644() {
        assert_eq!(
            exec_arg("/usr/bin/hoist-desktop").unwrap(),
            "/usr/bin/hoist-desktop"
        );
        assert_eq!(
            exec_arg("/opt/My Apps/hoist-desktop").unwrap(),
            "\"/opt/My Apps/hoist-desktop\""
        );
        // `$`, `"` and `\` escaped inside the quotes, then every backslash once more.
        assert_eq!(
            exec_arg("/home/a$b/\"x\"/h").unwrap(),
            "\"/home/a\\\\$b/\\\\\"x\\\\\"/h\""
        );
        assert_eq!(exec_arg("/opt/100%/h").unwrap(), "/opt/100%%/h");
        assert!(exec_arg("/opt/a\nExec=evil").is_err());
        let text = entry("/opt/My Apps/hoist-desktop").unwrap();
        assert!(
            text.contains("\nExec=\"/opt/My Apps/hoist-desktop\" --hidden\n"),
            "{text}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("autostart").join("hoist.desktop");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_entry(&path, &text).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}
