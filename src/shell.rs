//! `stocktake shell`: an interactive SQL prompt over every warehouse table, with history.
//! A statement ends with `;`. `\d` lists tables, `\d NAME` describes one, `\i FILE` runs a
//! file (the examples in `sql/examples/`), `\r` picks up newly committed versions, `\q` quits.

use std::io::Write;
use std::path::PathBuf;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use crate::error::{Error, Result};
use crate::query::{self, Format};
use crate::warehouse::{self, Warehouse};

/// Where history is kept: `STOCKTAKE_HISTORY`, else `~/.stocktake_history`.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("STOCKTAKE_HISTORY").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".stocktake_history")))
}

pub async fn shell(warehouse: &Warehouse) -> Result<i32> {
    let names = crate::marts::all_tables();
    let ctx = warehouse.session(&names).await?;
    let mut editor = DefaultEditor::new().map_err(|e| Error::Usage(format!("cannot start the prompt: {e}")))?;
    let history = history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!("stocktake shell on {} — end statements with ;  \\d tables  \\i FILE  \\r refresh  \\q quit", warehouse.root());
    let mut pending = String::new();
    let handle = tokio::runtime::Handle::current();
    loop {
        let prompt = if pending.is_empty() { "stocktake> " } else { "      ...> " };
        let line = match tokio::task::block_in_place(|| editor.readline(prompt)) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Usage(format!("reading the prompt: {e}"))),
        };
        let trimmed = line.trim();
        if pending.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut words = trimmed.split_whitespace();
            match (words.next(), words.next()) {
                (Some("\\q"), _) => break,
                (Some("\\r"), _) => warehouse.register(&ctx, &names).await?,
                (Some("\\d"), None) => println!("{}", names.join("\n")),
                (Some("\\d"), Some(table)) => show(&handle, &ctx, &format!("describe {table}")),
                (Some("\\i"), Some(file)) => match std::fs::read_to_string(file) {
                    Ok(text) => {
                        for statement in split_statements(&text) {
                            show(&handle, &ctx, &statement);
                        }
                    }
                    Err(e) => eprintln!("error: {file}: {e}"),
                },
                _ => eprintln!("unknown command {trimmed}: \\d [TABLE], \\i FILE, \\r, \\q"),
            }
            continue;
        }
        pending.push_str(&line);
        pending.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut pending);
            let _ = editor.add_history_entry(statement.trim());
            show(&handle, &ctx, statement.trim().trim_end_matches(';'));
        }
    }
    if let Some(path) = &history {
        let _ = editor.save_history(path);
    }
    Ok(0)
}

/// Runs one statement and prints its result, or the error (the shell goes on).
fn show(handle: &tokio::runtime::Handle, ctx: &datafusion::prelude::SessionContext, sql: &str) {
    let result = tokio::task::block_in_place(|| handle.block_on(warehouse::collect(ctx, "query", sql))).and_then(|b| query::render(&b, Format::Table));
    match result {
        Ok(text) => print!("{text}"),
        Err(e) => eprintln!("error: {e}"),
    }
    let _ = std::io::stdout().flush();
}

/// Statements of a file: comments dropped, split on `;`.
fn split_statements(text: &str) -> Vec<String> {
    let without_comments: String = text.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_split_into_statements_without_comments() {
        let s = super::split_statements("-- a comment; with a semicolon\nselect 1;\n\nselect 2 -- trailing\n;\n");
        assert_eq!(s, ["select 1", "select 2"]);
    }
}
