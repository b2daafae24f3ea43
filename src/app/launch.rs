//! Files handed to the app from outside its window: its command line, as a file manager's
//! "Open with Hoist" (`%F` in the desktop entry), a "Send to Hoist" script or a script of
//! one's own gives it — to a first launch, or forwarded by the single-instance plugin to the
//! app already running.

use std::path::{Path, PathBuf};

/// The files and folders among a launch's arguments (`args` without the program's name),
/// relative ones resolved against `cwd` (the launching process's directory): flags
/// (`--hidden`) are not files, and `file://` URIs (some file managers pass them) become paths.
pub fn paths_from_args(args: &[String], cwd: &Path) -> Vec<PathBuf> {
    args.iter()
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| match a.strip_prefix("file://") {
            Some(_) => url::Url::parse(a).ok()?.to_file_path().ok(),
            None => Some(PathBuf::from(a)),
        })
        .map(|p| if p.is_absolute() { p } else { cwd.join(p) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_come_from_arguments_and_flags_do_not() {
        let cwd = Path::new("/home/ana");
        let args: Vec<String> = [
            "--hidden",
            "a.txt",
            "/tmp/Photos",
            "file:///tmp/My%20Scans/x.pdf",
            "-psn_0_123",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            paths_from_args(&args, cwd),
            vec![
                PathBuf::from("/home/ana/a.txt"),
                PathBuf::from("/tmp/Photos"),
                PathBuf::from("/tmp/My Scans/x.pdf"),
            ]
        );
        assert!(paths_from_args(&[], cwd).is_empty());
    }
}
