//! The set of loaded source files. Spans carry a `FileId` into this set.

use archc_grammar::ast::FileId;
use miette::NamedSource;
use std::path::{Path, PathBuf};

/// The largest source file archc reads (a limit, so no input can exhaust memory).
pub const MAX_FILE_BYTES: usize = 4 << 20;

#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Where it was read from; `None` for text given in memory.
    pub path: Option<PathBuf>,
    /// The name shown in diagnostics.
    pub name: String,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
}

impl SourceSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add text held in memory (tests, stdin).
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push(SourceFile {
            path: None,
            name: name.into(),
            text: text.into(),
        });
        FileId(self.files.len() as u32 - 1)
    }

    /// Read a file from disk, once: a path already loaded returns its existing id.
    pub fn load(&mut self, path: &Path) -> std::io::Result<FileId> {
        let canon = path.canonicalize()?;
        if let Some(i) = self
            .files
            .iter()
            .position(|f| f.path.as_deref() == Some(canon.as_path()))
        {
            return Ok(FileId(i as u32));
        }
        let meta = std::fs::metadata(&canon)?;
        if meta.len() > MAX_FILE_BYTES as u64 {
            return Err(std::io::Error::other(format!(
                "the file is {} bytes; archc reads files of at most {} bytes",
                meta.len(),
                MAX_FILE_BYTES
            )));
        }
        let bytes = std::fs::read(&canon)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| std::io::Error::other("the file is not valid UTF-8 text"))?;
        self.files.push(SourceFile {
            path: Some(canon),
            name: path.display().to_string(),
            text,
        });
        Ok(FileId(self.files.len() as u32 - 1))
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn text(&self, id: FileId) -> &str {
        &self.get(id).text
    }

    pub fn named_source(&self, id: FileId) -> NamedSource<String> {
        let f = self.get(id);
        NamedSource::new(f.name.clone(), f.text.clone())
    }

    /// The path of a file used from `id` by `use "rel"`, as the user would write it: relative
    /// to the using file's folder as that file was named, with `.` and `..` folded.
    pub fn used_path(&self, id: FileId, rel: &str) -> PathBuf {
        let f = self.get(id);
        let dir = match &f.path {
            Some(_) => Path::new(&f.name)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            None => PathBuf::new(),
        };
        normalize(&dir.join(rel))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// Fold `.` and `..` components without touching the file system.
fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalize_folds_dots() {
        use std::path::Path;
        assert_eq!(
            super::normalize(Path::new("a/b/../c/./d.arch")),
            Path::new("a/c/d.arch")
        );
        assert_eq!(
            super::normalize(Path::new("../x.arch")),
            Path::new("../x.arch")
        );
    }
}
