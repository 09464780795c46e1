//! What the walk leaves out, and that it says so, on the local and the team index alike.

use std::time::{Duration, SystemTime};

use quarry_e2e::{Backend, Repo, any_text_contains, on_each_backend};

on_each_backend!(
    skips_secrets_binaries_big_and_non_utf8_files_and_counts_them,
    flags_let_secrets_and_bigger_files_in,
    unchanged_skipped_files_are_not_read_again,
);

fn skips_secrets_binaries_big_and_non_utf8_files_and_counts_them(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.write("keys/server.pem", "secret_pem_marker");
    // Hidden, so the walk never even looks at it; it is not counted as a secret.
    repo.write(".env", "API_TOKEN=secret_env_marker");
    repo.write(
        "deploy/credentials.json",
        "{\"token\": \"secret_json_marker\"}",
    );
    let key_body = "MIIEowIBAAKCAQEAx".repeat(4);
    repo.write(
        "notes/fixture_key.txt",
        format!("-----BEGIN RSA PRIVATE KEY-----\n{key_body}\nsecret_content_marker\n"),
    );
    repo.write("assets/logo.dat", b"\x00\x01binary_marker\x00");
    repo.write("notes/latin1.txt", b"caf\xe9 latin_marker\n");
    repo.write("data/huge.txt", "huge_marker ".repeat(200_000));
    repo.write(".gitignore", "ignored/\n");
    repo.write("ignored/skip_me.py", "def ignored_marker(): pass\n");

    let summary = repo.index();
    for part in [
        "skipped",
        "secret 3",
        "binary 1",
        "not-utf8 1",
        "too-large 1",
    ] {
        assert!(summary.contains(part), "missing `{part}` in: {summary}");
    }
    for marker in [
        "secret_pem_marker",
        "secret_env_marker",
        "secret_json_marker",
        "secret_content_marker",
        "binary_marker",
        "latin_marker",
        "huge_marker",
        "ignored_marker",
    ] {
        let hits = repo.search(marker, &["-k", "20"]);
        assert!(!any_text_contains(&hits, marker), "{marker} was indexed");
    }
}

fn flags_let_secrets_and_bigger_files_in(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.write(
        "config/credentials.json",
        "{\"token\": \"included_secret_marker\"}",
    );
    repo.write("data/big.txt", "big_file_marker\n".repeat(100_000));
    repo.index();
    let run = repo
        .quarry(&["index", "--include-secrets", "--max-file-size", "4M"])
        .success();
    assert!(run.stdout().contains("2 files indexed"), "{}", run.stdout());
    let hits = repo.search("included_secret_marker", &[]);
    assert!(any_text_contains(&hits, "included_secret_marker"));
    let hits = repo.search("big_file_marker", &[]);
    assert!(any_text_contains(&hits, "big_file_marker"));
}

fn unchanged_skipped_files_are_not_read_again(backend: Backend) {
    let repo = Repo::fixture("py-notes").on(backend);
    repo.write("assets/blob.dat", b"\x00\x01skipped_blob__\x00");
    let blob = repo.path().join("assets/blob.dat");
    // Older than the racy-mtime window, so size and mtime alone vouch for it.
    let past = SystemTime::now() - Duration::from_secs(60);
    set_mtime(&blob, past);
    let first = repo.index();
    assert!(first.contains("binary 1"), "{first}");

    // Same size, same mtime, other content: only a run that reads the file again sees it.
    std::fs::write(&blob, b"text_blob_marker\n").expect("rewrite");
    set_mtime(&blob, past);
    let second = repo.index();
    assert!(second.contains("is up to date"), "{second}");
    assert!(second.contains("binary 1"), "{second}");
    let hits = repo.search("text_blob_marker", &["-k", "5", "--mode", "keyword"]);
    assert!(
        !any_text_contains(&hits, "text_blob_marker"),
        "the skipped file was read again: {hits:?}"
    );

    // A real change (the mtime moves) is read.
    std::fs::write(&blob, b"text_blob_marker\n").expect("rewrite");
    let third = repo.index();
    assert!(third.contains("1 file indexed"), "{third}");
}

fn set_mtime(path: &std::path::Path, time: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(time))
        .expect("set mtime");
}
