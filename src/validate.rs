//! Checks a file before any byte is sent: it exists, is a readable regular file, is within the
//! profile's size limit, and its content type — detected from magic bytes with `infer`, the
//! extension only as a fallback — is allowed. A file whose content contradicts its name in a
//! dangerous way (an executable named `.pdf`) is refused.
//!
//! A path is resolved once, here: a symlink the user dropped is followed to the file it names,
//! and from then on that file is opened with [`open_source`], which never follows a symlink in
//! the last component and never blocks on a pipe. Every later open checks that it is still the
//! same file ([`CheckedFile::is_unchanged`]: device and inode, size, modification time), and
//! readers read at most the size validated, so a file swapped for another, for `/dev/zero` or for
//! a FIFO after validation is refused, not uploaded.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::io::AsyncReadExt;

use crate::profile::Profile;

/// S3's limit for a single PUT.
pub const MAX_SINGLE_PUT: u64 = 5 * 1024 * 1024 * 1024;

/// Bytes read to detect the content type.
const SNIFF_LEN: usize = 8192;

/// Why a file is refused before any byte is sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    /// It does not exist.
    #[error("file not found (was it moved or deleted?)")]
    NotFound,
    /// It cannot be read.
    #[error("cannot read the file: permission denied")]
    PermissionDenied,
    /// It is a folder.
    #[error("is a folder; pass the files inside it")]
    Directory,
    /// A device, pipe or socket.
    #[error("is not a regular file (device, pipe or socket); only regular files can be uploaded")]
    NotRegularFile,
    /// A symbolic link where a checked file was.
    #[error("was replaced by a symbolic link after it was checked; add the file again")]
    Symlink,
    /// Empty, and the profile refuses empty files.
    #[error("is empty; there is nothing to upload")]
    Empty,
    #[error(
        "is {}, over this profile's limit of {}",
        crate::profile::format_size(*size),
        crate::profile::format_size(*limit)
    )]
    /// Over the profile's size limit.
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    #[error(
        "is {}; files over 5 GiB need multipart upload, which this version does not do yet",
        crate::profile::format_size(*.0)
    )]
    /// Over S3's single-PUT limit, and the profile has no multipart.
    OverSinglePutLimit(u64),
    #[error("type {detected} is not allowed by this profile (allowed: {allowed})")]
    /// A type the profile does not allow.
    TypeNotAllowed {
        /// The type its content shows.
        detected: String,
        /// The types allowed, comma-separated.
        allowed: String,
    },
    #[error("content is {detected} but the name ends in .{extension}; rename the file or check where it came from")]
    /// Content of one kind behind another kind's extension (an executable named `.pdf`).
    ContentContradictsExtension {
        /// The type its content shows.
        detected: String,
        /// The extension of its name.
        extension: String,
    },
    /// It changed while it was being checked.
    #[error("changed while being read (size or modification time differs)")]
    Changed,
    /// Reading it failed.
    #[error("cannot read the file: {0}")]
    Io(String),
}

impl crate::error::HasKind for ValidationError {
    fn kind(&self) -> crate::error::ErrorKind {
        match self {
            Self::Changed => crate::error::ErrorKind::SourceChanged,
            _ => crate::error::ErrorKind::InvalidInput,
        }
    }
}

impl ValidationError {
    fn from_io(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound,
            std::io::ErrorKind::PermissionDenied => Self::PermissionDenied,
            _ => Self::Io(e.to_string()),
        }
    }
}

/// A file that passed validation, with what was learned about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedFile {
    /// The file.
    pub path: PathBuf,
    /// The last path component as it is on disk (sanitised later, in [`crate::key`]).
    pub file_name: String,
    /// Its size when checked.
    pub size: u64,
    /// Its type, from its content (or its name when the content says nothing).
    pub content_type: String,
    /// Its modification time when checked.
    pub modified: Option<SystemTime>,
    /// Which file it was (device and inode), where the platform says.
    pub identity: Option<FileIdentity>,
}

impl CheckedFile {
    /// Whether `meta` (the file's metadata now) still shows the same file, with the size and
    /// modification time it was checked with.
    pub fn is_unchanged(&self, meta: &std::fs::Metadata) -> bool {
        meta.is_file()
            && meta.len() == self.size
            && (self.modified.is_none() || meta.modified().ok() == self.modified)
            && (self.identity.is_none() || FileIdentity::of(meta) == self.identity)
    }

    /// Opens the file again to read it: still the file that was checked, or
    /// [`ValidationError::Changed`] (or why it cannot be opened).
    pub fn reopen(&self) -> Result<std::fs::File, ValidationError> {
        let (file, meta) = open_source(&self.path)?;
        if !self.is_unchanged(&meta) {
            return Err(ValidationError::Changed);
        }
        Ok(file)
    }
}

/// Which file a handle or path is: its device and inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    device: u64,
    inode: u64,
}

impl FileIdentity {
    /// The identity `meta` shows (Unix), `None` where the platform does not say.
    pub fn of(meta: &std::fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self {
                device: meta.dev(),
                inode: meta.ino(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// Opens a file to read it as an upload's source: a regular file, never through a symlink in
/// the last component, without blocking on a FIFO; with the handle's own metadata.
pub fn open_source(path: &Path) -> Result<(std::fs::File, std::fs::Metadata), ValidationError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        // FILE_FLAG_OPEN_REPARSE_POINT: open a symlink itself, not what it names.
        options.custom_flags(0x0020_0000);
    }
    let file = options.open(path).map_err(|e| {
        #[cfg(unix)]
        if e.raw_os_error() == Some(libc::ELOOP) {
            return ValidationError::Symlink;
        }
        ValidationError::from_io(e)
    })?;
    let meta = file.metadata().map_err(ValidationError::from_io)?;
    if meta.is_symlink() {
        return Err(ValidationError::Symlink);
    }
    if meta.is_dir() {
        return Err(ValidationError::Directory);
    }
    if !meta.is_file() {
        return Err(ValidationError::NotRegularFile);
    }
    Ok((file, meta))
}

/// Validates `path` against `profile`. A symlink is followed here, once: the [`CheckedFile`]
/// names the file it pointed to, under the name the user gave.
pub async fn check_file(path: &Path, profile: &Profile) -> Result<CheckedFile, ValidationError> {
    let target = tokio::fs::canonicalize(path)
        .await
        .map_err(ValidationError::from_io)?;
    let opened = tokio::task::spawn_blocking(move || open_source(&target).map(|o| (target, o)))
        .await
        .map_err(|e| ValidationError::Io(e.to_string()))?;
    let (target, (file, meta)) = opened?;
    let size = meta.len();
    if size == 0 && !profile.allow_empty {
        return Err(ValidationError::Empty);
    }
    if let Some(limit) = profile.max_size {
        if size > limit {
            return Err(ValidationError::TooLarge { size, limit });
        }
    }
    let mut file = tokio::fs::File::from_std(file);
    let mut head = vec![0u8; SNIFF_LEN.min(size as usize)];
    file.read_exact(&mut head)
        .await
        .map_err(ValidationError::from_io)?;

    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_string());
    let content_type = detect_type(&file_name, &head)?;
    if !type_allowed(&content_type, &profile.allowed_types) {
        return Err(ValidationError::TypeNotAllowed {
            detected: content_type,
            allowed: profile.allowed_types.join(", "),
        });
    }
    Ok(CheckedFile {
        path: target,
        file_name,
        size,
        content_type,
        modified: meta.modified().ok(),
        identity: FileIdentity::of(&meta),
    })
}

/// The content type: from magic bytes when they say, else from the extension.
pub fn detect_type(file_name: &str, head: &[u8]) -> Result<String, ValidationError> {
    let extension = Path::new(file_name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let by_extension = mime_guess::from_ext(&extension).first_raw();
    match infer::get(head) {
        Some(kind) => {
            let detected = kind.mime_type();
            let executable = kind.matcher_type() == infer::MatcherType::App;
            let name_says_executable = matches!(
                extension.as_str(),
                "exe"
                    | "dll"
                    | "msi"
                    | "com"
                    | "scr"
                    | "elf"
                    | "so"
                    | "dylib"
                    | "bin"
                    | "app"
                    | "o"
                    | "class"
                    | "dex"
                    | "wasm"
                    | ""
            );
            if executable && !name_says_executable {
                return Err(ValidationError::ContentContradictsExtension {
                    detected: detected.to_string(),
                    extension,
                });
            }
            Ok(detected.to_string())
        }
        None => Ok(by_extension
            .unwrap_or("application/octet-stream")
            .to_string()),
    }
}

/// Whether `content_type` matches one of the patterns (`image/png`, `image/*`, `*/*`).
pub fn type_allowed(content_type: &str, allowed: &[String]) -> bool {
    allowed.is_empty()
        || allowed.iter().any(|pattern| {
            pattern == "*/*"
                || pattern.eq_ignore_ascii_case(content_type)
                || pattern.strip_suffix("/*").is_some_and(|major| {
                    content_type
                        .split('/')
                        .next()
                        .is_some_and(|m| m.eq_ignore_ascii_case(major))
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF header (infer wants more than 52 bytes).
    const ELF: &[u8] = b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00\
        \x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\
        \x00\x00\x00\x00\x00\x00\x00\x00\x40\x00\x38\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn content_wins_over_extension() {
        assert_eq!(detect_type("photo.jpg", PNG).unwrap(), "image/png");
        assert_eq!(detect_type("notes.txt", b"hello").unwrap(), "text/plain");
        assert_eq!(
            detect_type("blob", b"\x01\x02").unwrap(),
            "application/octet-stream"
        );
    }

    #[test]
    fn executable_named_as_a_document_is_refused() {
        let err = detect_type("invoice.pdf", ELF).unwrap_err();
        assert!(
            matches!(err, ValidationError::ContentContradictsExtension { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(".pdf"));
        assert!(detect_type("tool.bin", ELF).is_ok());
    }

    #[test]
    fn type_patterns() {
        let allowed = vec!["image/*".to_string(), "application/pdf".to_string()];
        assert!(type_allowed("image/png", &allowed));
        assert!(type_allowed("application/pdf", &allowed));
        assert!(!type_allowed("text/plain", &allowed));
        assert!(type_allowed("text/plain", &[]));
    }
}
