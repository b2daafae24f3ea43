//! What a file's name says it is, and whether its declared type agrees: the extensions a
//! desktop runs or opens in a browser whatever the declared type (refused unless listed), and
//! declared types that contradict the name (refused, with the equivalents browsers and
//! operating systems really send allowed).

use axum::http::StatusCode;

use crate::error::ApiError;

/// Extensions a desktop runs, installs or opens in a browser when the file is double-clicked,
/// whatever type was declared for it: Windows (programs, installers, scripts, shortcuts,
/// registry files), macOS, Linux and Android packages, shell scripts and web pages.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "msi",
    "msp",
    "msix",
    "msixbundle",
    "appx",
    "appxbundle",
    "dll",
    "sys",
    "drv",
    "ocx",
    "cpl",
    "scr",
    "pif",
    "com",
    "bat",
    "cmd",
    "ps1",
    "psm1",
    "psd1",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "hta",
    "lnk",
    "url",
    "reg",
    "inf",
    "jar",
    "app",
    "dmg",
    "pkg",
    "mpkg",
    "deb",
    "rpm",
    "apk",
    "xapk",
    "ipa",
    "sh",
    "bash",
    "csh",
    "ksh",
    "zsh",
    "command",
    "run",
    "mht",
    "mhtml",
    "html",
    "htm",
    "xhtml",
    "shtml",
    "svg",
    "php",
];

/// The extension a desktop sees in `name`: after the last dot of the last path segment, once
/// trailing dots and spaces are gone (Windows drops them: `setup.exe.` is `setup.exe`), in
/// compatibility form (NFKC: a fullwidth `ｅｘｅ` is read as the letters it shows) and without
/// invisible characters, lower-cased.
pub(crate) fn desktop_extension(name: &str) -> Option<String> {
    use unicode_normalization::UnicodeNormalization as _;
    let shown: String = name
        .nfkc()
        .filter(|c| !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{feff}'))
        .collect();
    let last = shown.rsplit(['/', '\\']).next().unwrap_or(&shown);
    let trimmed = last.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let (stem, ext) = trimmed.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

/// Refuses a file whose name makes it an executable, an installer or a web page (415), unless
/// `allowed` lists its extension exactly (`".exe"`), or exactly the type its name has
/// (`guessed`: `"text/html"` for a `.html`).
pub(crate) fn name_admitted(name: &str, guessed: &str, allowed: &[String]) -> Result<(), ApiError> {
    let Some(ext) = desktop_extension(name) else {
        return Ok(());
    };
    let listed = allowed.iter().any(|a| {
        a.strip_prefix('.')
            .is_some_and(|e| e.eq_ignore_ascii_case(&ext))
            || (guessed != "application/octet-stream" && a.eq_ignore_ascii_case(guessed))
    });
    // Read as a person reads it too: `.ехе` in Cyrillic letters looks like `.exe`, and a
    // person told "it is only a document" opens it as one.
    let looks_like = latin_lookalike(&ext);
    let reads_as = if looks_like == ext {
        String::new()
    } else {
        format!(" (which reads as .{looks_like})")
    };
    let executable = |e: &str| EXECUTABLE_EXTENSIONS.contains(&e);
    if (executable(&ext) || executable(&looks_like)) && !listed {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a .{ext} file{reads_as} is not allowed, whatever its declared type: programs, \
                 installers, scripts and web pages are refused unless the server lists the \
                 extension (policy.allowed_types = [\".{ext}\"])"
            ),
        ));
    }
    Ok(())
}

/// `ext` with the Cyrillic and Greek letters that look like Latin ones (the confusables NFKC
/// does not fold) read as those.
fn latin_lookalike(ext: &str) -> String {
    ext.chars()
        .map(|c| match c {
            'а' | 'α' => 'a',
            'с' | 'ϲ' => 'c',
            'ԁ' => 'd',
            'е' | 'ε' => 'e',
            'һ' => 'h',
            'і' | 'ι' => 'i',
            'ј' => 'j',
            'к' | 'κ' => 'k',
            'ӏ' => 'l',
            'м' => 'm',
            'п' => 'n',
            'о' | 'ο' => 'o',
            'р' | 'ρ' => 'p',
            'ԛ' => 'q',
            'ѕ' => 's',
            'т' | 'τ' => 't',
            'ս' | 'υ' => 'u',
            'ѵ' | 'ν' => 'v',
            'ԝ' => 'w',
            'х' | 'χ' => 'x',
            'у' | 'γ' => 'y',
            other => other,
        })
        .collect()
}

/// Declared types that name no content: they contradict nothing.
const GENERIC_TYPES: &[&str] = &[
    "application/octet-stream",
    "binary/octet-stream",
    "application/binary",
    "application/x-binary",
    "application/force-download",
    "application/download",
];

/// Types clients really declare for an extension beside the ones `mime_guess` knows (Windows
/// browsers take a type from the registry: a `.csv` is `application/vnd.ms-excel` where Excel
/// is installed).
const EQUIVALENTS: &[(&str, &[&str])] = &[
    (
        "csv",
        &[
            "application/vnd.ms-excel",
            "application/csv",
            "application/x-csv",
            "text/x-csv",
            "text/comma-separated-values",
            "text/x-comma-separated-values",
            "text/plain",
        ],
    ),
    ("tsv", &["text/plain", "application/vnd.ms-excel"]),
    (
        "ts",
        &["video/mp2t", "text/x-typescript", "application/typescript"],
    ),
    (
        "yaml",
        &["application/yaml", "application/x-yaml", "text/yaml"],
    ),
    (
        "yml",
        &["application/yaml", "application/x-yaml", "text/yaml"],
    ),
    ("wma", &["video/x-ms-wmv", "video/x-ms-asf"]),
    ("dwg", &["image/vnd.dwg", "image/x-dwg"]),
    ("dxf", &["image/vnd.dxf"]),
    ("woff", &["font/woff", "application/font-woff"]),
    ("woff2", &["font/woff2", "application/font-woff"]),
    ("otf", &["font/otf"]),
    ("ttf", &["font/ttf"]),
    ("stl", &["model/stl"]),
    ("obj", &["model/obj"]),
    ("eps", &["image/x-eps"]),
    ("m4a", &["audio/mp4", "audio/x-m4a"]),
    ("heic", &["image/heic", "image/heif"]),
    ("heif", &["image/heic", "image/heif"]),
    ("jfif", &["image/jpeg", "image/pjpeg"]),
];

/// Application types whose content is text: `text/plain` declared for them is no
/// contradiction (a `.json` saved by an editor).
const TEXTUAL: &[&str] = &[
    "json", "xml", "yaml", "x-yaml", "toml", "sql", "x-sql", "csv", "x-csv", "rtf", "x-tex",
    "x-latex", "x-ndjson", "ld+json", "geo+json", "x-subrip",
];

/// Refuses (415) a declared type `declared` that contradicts `name`'s extension: another
/// family of content (`image/png` for a `.pdf`), unless the pair is one clients really send
/// (the policy asks only where the answer changes its outcome)
/// (same subtype under another family, a known equivalent, text for a textual type). A name
/// without an extension, or one `mime_guess` does not know, contradicts nothing; nor does a
/// generic type.
pub(crate) fn type_fits_name(declared: &str, name: &str) -> Result<(), ApiError> {
    let Some(ext) = desktop_extension(name) else {
        return Ok(());
    };
    if GENERIC_TYPES.contains(&declared) {
        return Ok(());
    }
    let expected: Vec<String> = mime_guess::from_ext(&ext)
        .iter_raw()
        .map(str::to_ascii_lowercase)
        .chain(
            EQUIVALENTS
                .iter()
                .filter(|(e, _)| *e == ext)
                .flat_map(|(_, types)| types.iter().map(|t| (*t).to_string())),
        )
        .collect();
    // A name whose type is a generic one (`.bin`) says nothing of the content either.
    if expected.iter().all(|e| GENERIC_TYPES.contains(&e.as_str())) {
        return Ok(());
    }
    let parts = |t: &str| -> (String, String) {
        let (family, sub) = t.split_once('/').unwrap_or((t, ""));
        (family.to_string(), sub.to_string())
    };
    let (family, sub) = parts(declared);
    let fits = expected.iter().any(|e| {
        let (e_family, e_sub) = parts(e);
        e == declared
            || e_family == family
            || e_sub == sub
            || (declared == "text/plain"
                && e_family == "application"
                && TEXTUAL.contains(&e_sub.as_str()))
    });
    if fits {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "the declared type {declared} contradicts the name: a .{ext} file is {}; declare \
             that (or application/octet-stream), or rename the file",
            expected[0]
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// #29, finding 3: a declared type of another family than the name's is refused; what
    /// browsers and operating systems really send for a name is not.
    #[test]
    fn a_declared_type_that_contradicts_the_name_is_refused() {
        for (declared, name) in [
            ("image/png", "report.pdf"),
            ("application/pdf", "photo.png"),
            ("image/jpeg", "archive.zip"),
            ("text/plain", "movie.mp4"),
            ("image/png", "notes.txt."),
            ("video/mp4", "slides.pptx"),
        ] {
            let e = type_fits_name(declared, name).expect_err(&format!("{declared} for {name}"));
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(e.message.contains("contradicts the name"), "{}", e.message);
        }
        for (declared, name) in [
            ("application/vnd.ms-excel", "figures.csv"),
            ("text/csv", "figures.csv"),
            ("text/plain", "figures.csv"),
            ("image/png", "photo.jpg"),
            ("application/mp4", "movie.mp4"),
            ("text/plain", "data.json"),
            ("text/xml", "feed.xml"),
            ("video/mp2t", "main.ts"),
            ("application/x-zip-compressed", "archive.zip"),
            ("application/octet-stream", "report.pdf"),
            ("image/png", "README"),
            ("image/png", "weird.unknownext"),
            ("image/png", "blob.bin"),
            ("application/pdf", "report.PDF"),
            // What browsers and Hoist's own content sniffing (infer) declare for these names.
            ("application/yaml", "compose.yaml"),
            ("video/x-ms-wmv", "song.wma"),
            ("image/vnd.dwg", "plan.dwg"),
            ("application/font-woff", "face.woff2"),
            ("font/woff", "face.woff"),
            ("model/stl", "part.stl"),
            ("image/x-eps", "logo.eps"),
        ] {
            assert!(
                type_fits_name(declared, name).is_ok(),
                "{declared} for {name} was refused"
            );
        }
    }

    /// Review of #29's fix: Hoist's own client declares what the content says (infer), which
    /// can differ from what the name says; none of these real files may read as a
    /// contradiction.
    #[test]
    fn what_hoists_client_declares_for_real_files_fits_their_names() {
        let asf: &[u8] = &[
            0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9, 0x00, 0xAA, 0x00, 0x62,
            0xCE, 0x6C,
        ];
        let samples: &[(&str, &[u8])] = &[
            ("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            ("photo.jpg", b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"),
            ("report.pdf", b"%PDF-1.7\n"),
            ("letter.docx", b"PK\x03\x04\x14\0\x06\0"),
            ("song.mp3", b"ID3\x04\0\0\0\0\0\0"),
            ("song.wma", asf),
            ("clip.mp4", b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom"),
            ("notes.txt", b"just text"),
            ("data.csv", b"a,b,c\n1,2,3\n"),
        ];
        for (name, head) in samples {
            let declared = hoist::validate::detect_type(name, head).expect("a type");
            assert!(
                type_fits_name(&declared, name).is_ok(),
                "{name}: the client declares {declared}, refused as a contradiction"
            );
        }
    }
}
