//! The batch run, in two streaming passes over the feed files.
//!
//! 1. **Collect**: who the records are about (distinct identities: the same demographics on a
//!    thousand claim lines are one identity), void claims, NDC → ingredient pairs.
//! 2. **Match**: train the model on the identities, decide each once.
//! 3. **Apply**: read the files again; write one link line per person-record and fold each
//!    linked record's statements into its member's facts.
//!
//! Memory grows with distinct people and distinct facts, never with the number of lines:
//! files are read record by record and link lines go straight to disk. Files are read in
//! parallel (`jobs`), each by one thread.

use crate::feeds::roster::{self, Member};
use crate::feeds::{self, FeedKind, Item, PersonRecord, Subject};
use crate::matching::{Decision, Identity, Matcher, Outcome, Roster, prepare::Prepared};
use crate::output;
use crate::person::Person;
use crate::report::Report;
use crate::resolve::{self, Context, FactType, MemberFacts, Skipped};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the roster {0} gave no members (see the report)")]
    EmptyRoster(String),
    #[error("a worker reading a feed file stopped unexpectedly")]
    WorkerPanicked,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EnrichError + '_ {
    move |source| EnrichError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One feed file of the batch.
#[derive(Clone, Debug)]
pub struct Input {
    pub path: PathBuf,
    /// Its path relative to the batch folder, with `/`.
    pub source: String,
    pub kind: FeedKind,
}

/// The feed files named (files, or folders walked in name order), the roster left out.
pub fn inputs(members: &Path, feeds: &[PathBuf]) -> Result<Vec<Input>, EnrichError> {
    let root = members.parent().unwrap_or(Path::new("."));
    let roster = members.canonicalize().map_err(io(members))?;
    let mut files = Vec::new();
    for f in feeds {
        walk(f, &mut files)?;
    }
    let mut out = Vec::new();
    for path in files {
        if path.canonicalize().ok().as_deref() == Some(roster.as_path()) {
            continue;
        }
        let Some(kind) = FeedKind::detect(&path).map_err(io(&path))? else {
            continue;
        };
        if kind == FeedKind::Roster {
            continue;
        }
        let rel: PathBuf = match path.strip_prefix(root) {
            Ok(r) => r.to_path_buf(),
            Err(_) => match (path.canonicalize(), root.canonicalize()) {
                (Ok(abs), Ok(r)) if abs.starts_with(&r) => abs
                    .strip_prefix(&r)
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                _ => PathBuf::from(path.file_name().unwrap_or_default()),
            },
        };
        let source = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        if out.iter().any(|i: &Input| i.source == source) {
            continue;
        }
        out.push(Input { path, source, kind });
    }
    Ok(out)
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), EnrichError> {
    let meta = std::fs::metadata(p).map_err(io(p))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io(p))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, out)?;
        }
    } else {
        out.push(p.to_path_buf());
    }
    Ok(())
}

pub struct Options {
    pub jobs: usize,
    /// The time stamped on Provenance (`recorded`), RFC 3339.
    pub recorded: String,
}

/// Counts of a run, for the CLI, the metrics and the batch report.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    pub records: u64,
    pub linked: u64,
    pub review: u64,
    pub unmatched: u64,
    pub identities: u64,
    pub statements: u64,
    pub voided: u64,
    pub facts: u64,
    /// Statements folded into a fact another record already stated.
    pub merged: u64,
    pub facts_by_type: BTreeMap<String, u64>,
    pub multi_source_facts: u64,
    pub members_with_facts: u64,
    pub problems: u64,
}

/// Everything a run produced, in memory (the offline CLI writes it out with [`write`]).
pub struct BatchResult {
    pub summary: Summary,
    pub report: Report,
    pub members: Vec<Member>,
    pub facts: HashMap<usize, MemberFacts>,
    pub reviews: Vec<serde_json::Value>,
    /// Per identity linked or held for review: what it brought (see [`Trace`]).
    pub traces: BTreeMap<u32, Trace>,
}

/// A reader that counts bytes for the progress bar.
struct Counting<'a, R> {
    inner: R,
    seen: &'a AtomicU64,
    tick: &'a (dyn Fn(u64) + Sync),
    pending: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 18 || n == 0 {
            let total = self.seen.fetch_add(self.pending, Ordering::Relaxed) + self.pending;
            self.pending = 0;
            (self.tick)(total);
        }
        Ok(n)
    }
}

fn open_counted<'a>(
    input: &Input,
    seen: &'a AtomicU64,
    tick: &'a (dyn Fn(u64) + Sync),
) -> Result<Counting<'a, File>, EnrichError> {
    Ok(Counting {
        inner: File::open(&input.path).map_err(io(&input.path))?,
        seen,
        tick,
        pending: 0,
    })
}

fn identity_key(r: &PersonRecord) -> String {
    let p: &Person = &r.person;
    let o = |s: &Option<String>| s.as_deref().unwrap_or("").to_string();
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}",
        o(&r.member_id),
        o(&p.first),
        o(&p.middle),
        o(&p.last),
        o(&p.suffix),
        p.other_last.join(","),
        p.birth,
        p.sex,
        o(&p.street),
        o(&p.zip),
        o(&p.phone),
        o(&p.email),
        o(&p.city),
    )
}

fn parent_dir(source: &str) -> &str {
    source.rsplit_once('/').map_or("", |(d, _)| d)
}

#[derive(Default)]
struct Collected {
    identities: Vec<(String, PersonRecord)>,
    patients: Vec<(String, String, String)>,
    ctx: Context,
    report: Report,
}

fn collect(
    input: &Input,
    seen: &AtomicU64,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Collected, EnrichError> {
    let reader = open_counted(input, seen, tick)?;
    let mut c = Collected::default();
    let mut keys: HashMap<String, ()> = HashMap::new();
    let dir = parent_dir(&input.source).to_string();
    let mut report = Report::default();
    {
        let mut fr = report.for_file(&input.source);
        feeds::read(input.kind, reader, &mut fr, &mut |item| match item {
            Item::Person(r) => {
                let k = identity_key(&r);
                if input.kind == FeedKind::FhirNdjson {
                    c.patients.push((dir.clone(), r.key.clone(), k.clone()));
                }
                if keys.insert(k.clone(), ()).is_none() {
                    c.identities.push((k, r));
                }
            }
            Item::Void(id) => {
                c.ctx.voids.insert(id);
            }
            Item::NdcIngredient { ndc, rxcui } => {
                c.ctx.ingredients.insert(rxcui.clone());
                c.ctx.ndc.entry(ndc).or_insert(rxcui);
            }
            Item::Statement(_) => {}
        });
    }
    c.report = report;
    Ok(c)
}

struct Applied {
    links: PathBuf,
    facts: HashMap<usize, MemberFacts>,
    traces: BTreeMap<u32, Trace>,
    summary: Summary,
    unresolved: u64,
}

struct Shared<'a> {
    ids: &'a HashMap<String, u32>,
    patients: &'a HashMap<(String, String), u32>,
    outcomes: &'a [Outcome],
    members: &'a [Member],
    ctx: &'a Context,
}

fn apply(
    input: &Input,
    n: usize,
    out: &Path,
    sh: &Shared<'_>,
    seen: &AtomicU64,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<Applied, EnrichError> {
    let reader = open_counted(input, seen, tick)?;
    let links_path = out.join(format!(".links-{n:04}.tmp"));
    let mut w = BufWriter::new(File::create(&links_path).map_err(io(&links_path))?);
    let mut facts: HashMap<usize, MemberFacts> = HashMap::new();
    let mut traces: BTreeMap<u32, Trace> = BTreeMap::new();
    let mut s = Summary::default();
    let mut unresolved = 0u64;
    let mut write_err = None;
    let dir = parent_dir(&input.source).to_string();
    let mut current: Option<(String, u32)> = None;
    // Problems were reported in the first pass; this pass reads the same bytes.
    let mut scratch = Report::default();
    let mut fr = scratch.for_file(&input.source);
    feeds::read(input.kind, reader, &mut fr, &mut |item| match item {
        Item::Person(r) => {
            let Some(&idx) = sh.ids.get(&identity_key(&r)) else {
                return;
            };
            let o = &sh.outcomes[idx as usize];
            let member = o.member.map(|m| sh.members[m].member_id.as_str());
            let shown = if o.decision == Decision::Unmatched {
                None
            } else {
                member
            };
            s.records += 1;
            match o.decision {
                Decision::Linked => s.linked += 1,
                Decision::Review => s.review += 1,
                Decision::Unmatched => s.unmatched += 1,
            }
            let line = output::link_line(
                &input.source,
                &r.key,
                shown,
                o.decision.as_str(),
                o.score,
                idx,
            );
            if let Err(e) = writeln!(w, "{line}") {
                write_err.get_or_insert(e);
            }
            current = Some((r.key, idx));
        }
        Item::Statement(st) => {
            let idx = match &st.subject {
                Subject::Record(k) => current.as_ref().filter(|(ck, _)| ck == k).map(|(_, i)| *i),
                Subject::Patient(id) => sh.patients.get(&(dir.clone(), id.clone())).copied(),
            };
            let Some(idx) = idx else {
                unresolved += 1;
                return;
            };
            let o = &sh.outcomes[idx as usize];
            let Some(m) = o.member else { return };
            let trace = || Trace {
                member: m,
                ..Trace::default()
            };
            match o.decision {
                Decision::Linked => {
                    s.statements += 1;
                    match facts.entry(m).or_default().add(sh.ctx, &input.source, &st) {
                        Ok(()) => {
                            traces
                                .entry(idx)
                                .or_insert_with(trace)
                                .sources
                                .insert(resolve::source_id(&input.source, &st));
                        }
                        Err(Skipped::Void) => s.voided += 1,
                        Err(Skipped::NoIngredient) => unresolved += 1,
                    }
                }
                // Resolved aside: the facts the candidate gets if a person accepts the link.
                Decision::Review => {
                    let t = traces.entry(idx).or_insert_with(trace);
                    t.review = true;
                    if t.held.add(sh.ctx, &input.source, &st).is_ok() {
                        t.sources.insert(resolve::source_id(&input.source, &st));
                    }
                }
                Decision::Unmatched => {}
            }
        }
        Item::Void(_) | Item::NdcIngredient { .. } => {}
    });
    drop(fr);
    if let Some(e) = write_err {
        return Err(io(&links_path)(e));
    }
    w.flush().map_err(io(&links_path))?;
    Ok(Applied {
        links: links_path,
        facts,
        traces,
        summary: s,
        unresolved,
    })
}

/// Runs items over `inputs` on up to `jobs` threads, keeping input order in the results.
fn parallel<T: Send>(
    inputs: &[Input],
    jobs: usize,
    f: impl Fn(usize, &Input) -> Result<T, EnrichError> + Sync,
) -> Result<Vec<T>, EnrichError> {
    let next = AtomicU64::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<T, EnrichError>>>> =
        inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, inputs.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(input) = inputs.get(i) else { break };
                    let r = f(i, input);
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .ok()
                .flatten()
                .unwrap_or(Err(EnrichError::WorkerPanicked))
        })
        .collect()
}

/// Total bytes of the inputs (for a progress bar of both passes: twice this).
pub fn total_bytes(inputs: &[Input]) -> u64 {
    inputs
        .iter()
        .filter_map(|i| std::fs::metadata(&i.path).ok())
        .map(|m| m.len())
        .sum()
}

/// Runs the batch: `members` is the roster, `inputs` the feed files; link lines go to
/// `out/links.ndjson` as they are decided. `tick` is told the bytes read so far.
pub fn run(
    members: &Path,
    inputs: &[Input],
    out: &Path,
    opts: &Options,
    tick: &(dyn Fn(u64) + Sync),
) -> Result<BatchResult, EnrichError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let mut report = Report::default();
    let roster_source = members.file_name().map_or("members.csv".to_string(), |n| {
        n.to_string_lossy().into_owned()
    });
    let roster_members = {
        let f = File::open(members).map_err(io(members))?;
        let mut fr = report.for_file(&roster_source);
        roster::read(f, &mut fr)
    };
    if roster_members.is_empty() {
        return Err(EnrichError::EmptyRoster(roster_source));
    }
    let seen = AtomicU64::new(0);
    // 1. Collect.
    let collected = parallel(inputs, opts.jobs, |_, i| collect(i, &seen, tick))?;
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut identities: Vec<Identity> = Vec::new();
    let mut patients: HashMap<(String, String), u32> = HashMap::new();
    let mut ctx = Context::default();
    for c in collected {
        for (k, r) in c.identities {
            if let std::collections::hash_map::Entry::Vacant(e) = ids.entry(k) {
                e.insert(u32::try_from(identities.len()).unwrap_or(u32::MAX));
                identities.push(Identity {
                    member_id: r.member_id.clone(),
                    prepared: Prepared::new(&r.person),
                });
            }
        }
        for (dir, fhir_id, k) in c.patients {
            if let Some(&i) = ids.get(&k) {
                patients.insert((dir, fhir_id), i);
            }
        }
        ctx.voids.extend(c.ctx.voids);
        ctx.ingredients.extend(c.ctx.ingredients);
        for (n, r) in c.ctx.ndc {
            ctx.ndc.entry(n).or_insert(r);
        }
        report.problems.extend(c.report.problems);
        for (f, n) in c.report.records {
            *report.records.entry(f).or_default() += n;
        }
    }
    // 2. Match.
    let matcher = Matcher::train(Roster::new(roster_members), &identities);
    let outcomes = decide_all(&matcher, &identities, opts.jobs);
    // 3. Apply.
    let shared = Shared {
        ids: &ids,
        patients: &patients,
        outcomes: &outcomes,
        members: &matcher.roster.members,
        ctx: &ctx,
    };
    let applied = parallel(inputs, opts.jobs, |n, i| {
        apply(i, n, out, &shared, &seen, tick)
    })?;
    let links_path = out.join("links.ndjson");
    let mut links = BufWriter::new(File::create(&links_path).map_err(io(&links_path))?);
    let mut summary = Summary::default();
    let mut facts: HashMap<usize, MemberFacts> = HashMap::new();
    let mut traces: BTreeMap<u32, Trace> = BTreeMap::new();
    let mut unresolved = 0;
    for a in applied {
        for (i, t) in a.traces {
            match traces.entry(i) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(t);
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    let mine = e.get_mut();
                    mine.sources.extend(t.sources);
                    mine.held.absorb(t.held);
                }
            }
        }
        let mut f = File::open(&a.links).map_err(io(&a.links))?;
        std::io::copy(&mut f, &mut links).map_err(io(&links_path))?;
        std::fs::remove_file(&a.links).map_err(io(&a.links))?;
        for (m, mf) in a.facts {
            facts.entry(m).or_default().absorb(mf);
        }
        let s = a.summary;
        summary.records += s.records;
        summary.linked += s.linked;
        summary.review += s.review;
        summary.unmatched += s.unmatched;
        summary.statements += s.statements;
        summary.voided += s.voided;
        unresolved += a.unresolved;
    }
    links.flush().map_err(io(&links_path))?;
    // Identities linked or held whose records stated nothing still get a trace: a person may
    // decide on them too.
    for (i, o) in outcomes.iter().enumerate() {
        let (Some(member), Ok(i)) = (o.member, u32::try_from(i)) else {
            continue;
        };
        if matches!(o.decision, Decision::Linked | Decision::Review) {
            traces.entry(i).or_insert_with(|| Trace {
                member,
                review: o.decision == Decision::Review,
                ..Trace::default()
            });
        }
    }
    if unresolved > 0 {
        report.problems.push(crate::report::Problem {
            file: "(batch)".into(),
            at: "batch".into(),
            reason: format!("{unresolved} statements name a Patient that is not in the batch or a drug whose ingredient is unknown: not applied"),
        });
    }
    summary.identities = identities.len() as u64;
    for mf in facts.values() {
        summary.merged += mf.merged;
        for f in mf.facts.values() {
            summary.facts += 1;
            *summary
                .facts_by_type
                .entry(f.kind.as_str().to_string())
                .or_default() += 1;
            if f.sources.len() > 1 {
                summary.multi_source_facts += 1;
            }
        }
    }
    for t in FactType::ALL {
        summary
            .facts_by_type
            .entry(t.as_str().to_string())
            .or_default();
    }
    summary.members_with_facts = facts.values().filter(|f| !f.facts.is_empty()).count() as u64;
    summary.problems = report.problems.len() as u64;
    let reviews = review_items(&matcher, &outcomes);
    Ok(BatchResult {
        summary,
        report,
        members: matcher.roster.members,
        facts,
        reviews,
        traces,
    })
}

/// What one identity (a distinct set of demographics: one or more person-records) brought to
/// the batch. Linked: the source records its applied statements came from, so that undoing
/// the link removes exactly those from the member's facts. Held for review: the same, and the
/// facts it would add to its candidate, resolved aside so that accepting applies them as is.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    /// The linked member or the review's candidate (an index into the roster).
    pub member: usize,
    /// Provenance source ids (`<file>#<record>`).
    pub sources: BTreeSet<String>,
    /// Held for review (not linked).
    pub review: bool,
    /// For an identity held for review: its facts, for the candidate.
    pub held: MemberFacts,
}

fn decide_all(matcher: &Matcher, identities: &[Identity], jobs: usize) -> Vec<Outcome> {
    let chunk = identities.len().div_ceil(jobs.max(1)).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = identities
            .chunks(chunk)
            .map(|c| scope.spawn(move || c.iter().map(|i| matcher.decide(i)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// The review queue: one entry per identity held for a person, with the evidence.
fn review_items(matcher: &Matcher, outcomes: &[Outcome]) -> Vec<serde_json::Value> {
    outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| o.decision == Decision::Review)
        .map(|(i, o)| {
            let cands: Vec<serde_json::Value> = o
                .candidates
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "member_id": matcher.roster.members[c.member].member_id,
                        "probability": c.probability,
                        "weight_bits": (c.bits * 100.0).round() / 100.0,
                        "fields": c.fields,
                        "veto": c.veto,
                    })
                })
                .collect();
            serde_json::json!({
                "identity": i,
                "method": o.method,
                "candidate": o.member.map(|m| matcher.roster.members[m].member_id.clone()),
                "candidates": cands,
            })
        })
        .collect()
}

/// Writes the members' Bundles, the report, the review queue and the summary under `out`.
pub fn write(out: &Path, o: &BatchResult, recorded: &str) -> Result<(), EnrichError> {
    let dir = out.join("members");
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let mut keys: Vec<&usize> = o.facts.keys().collect();
    keys.sort();
    for m in keys {
        let mf = &o.facts[m];
        if mf.facts.is_empty() {
            continue;
        }
        let member = &o.members[*m];
        let path = dir.join(format!("{}.fhir.json", member.member_id));
        let b = output::bundle(member, mf, recorded);
        let mut w = BufWriter::new(File::create(&path).map_err(io(&path))?);
        serde_json::to_writer(&mut w, &b).map_err(|e| io(&path)(e.into()))?;
        w.flush().map_err(io(&path))?;
    }
    write_json(&out.join("report.json"), &o.report)?;
    write_json(&out.join("summary.json"), &o.summary)?;
    let path = out.join("review.ndjson");
    let mut w = BufWriter::new(File::create(&path).map_err(io(&path))?);
    for r in &o.reviews {
        writeln!(w, "{r}").map_err(io(&path))?;
    }
    w.flush().map_err(io(&path))?;
    Ok(())
}

fn write_json(path: &Path, v: &impl Serialize) -> Result<(), EnrichError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| io(path)(e.into()))?;
    std::fs::write(path, text).map_err(io(path))
}

/// Every person-record of the inputs with its source (for benchmarks and the review tools:
/// holds them all in memory, unlike [`run`]).
pub fn person_records(inputs: &[Input]) -> Result<Vec<(String, PersonRecord)>, EnrichError> {
    let mut out = Vec::new();
    for input in inputs {
        let file = File::open(&input.path).map_err(io(&input.path))?;
        let mut report = Report::default();
        let mut fr = report.for_file(&input.source);
        feeds::read(input.kind, file, &mut fr, &mut |item| {
            if let Item::Person(r) = item {
                out.push((input.source.clone(), r));
            }
        });
    }
    Ok(out)
}

/// Matches person-records to the roster the way [`run`] does (distinct identities decided
/// once, on `jobs` threads): the matcher and one outcome per record, in order.
pub fn match_people(
    members: Vec<Member>,
    people: &[PersonRecord],
    jobs: usize,
) -> (Matcher, Vec<Outcome>) {
    let mut ids: HashMap<String, usize> = HashMap::new();
    let mut identities = Vec::new();
    let mut of_record = Vec::with_capacity(people.len());
    for r in people {
        let n = identities.len();
        let i = *ids.entry(identity_key(r)).or_insert(n);
        if i == n {
            identities.push(Identity {
                member_id: r.member_id.clone(),
                prepared: Prepared::new(&r.person),
            });
        }
        of_record.push(i);
    }
    let matcher = Matcher::train(Roster::new(members), &identities);
    let outcomes = decide_all(&matcher, &identities, jobs);
    let per_record = of_record.into_iter().map(|i| outcomes[i].clone()).collect();
    (matcher, per_record)
}
