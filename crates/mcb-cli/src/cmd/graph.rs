//! `mcb why` and `mcb tree`: the dependency graph of a site's lock, as `composer why` and
//! `cargo tree` show theirs.

use mcb_realise::{DependencyGraph, GraphNode};
use serde::Serialize;

use crate::cli::{GlobalArgs, TreeArgs, WhyArgs};
use crate::error::{CliError, Exit};
use crate::term::{out_json, say};

/// `1.2 (2024010100)`, or the build alone.
fn version(n: &GraphNode) -> String {
    match &n.release {
        Some(r) if r != &n.version => format!("{r} ({})", n.version),
        _ => n.version.clone(),
    }
}

#[derive(Serialize)]
struct Why<'a> {
    site: &'a str,
    component: &'a str,
    version: &'a str,
    /// Listed in the site file itself.
    in_site_file: bool,
    /// Each chain from a plugin of the site file to the component.
    chains: Vec<Vec<String>>,
}

pub fn why(g: &GlobalArgs, a: &WhyArgs) -> Result<Exit, CliError> {
    let site = crate::site_file::locate(a.site.as_deref())?;
    let graph = DependencyGraph::of_site(&site, &g.store())?;
    let Some(node) = graph.node(&a.component) else {
        let mut e = CliError::from(mcb_config::ConfigError::new(
            &site,
            format!("{} is not in the lock of site {}", a.component, graph.site),
        ));
        let names: Vec<&str> = graph.nodes.iter().map(|n| n.component.as_str()).collect();
        if let Some(near) = mcb_config::edit::did_you_mean(&a.component, &names) {
            e.hints.push(format!("did you mean {near}?"));
        }
        return Err(e);
    };
    let chains: Vec<Vec<String>> = graph
        .why(&a.component)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    if g.json {
        out_json(&Why {
            site: &graph.site,
            component: &node.component,
            version: &node.version,
            in_site_file: !node.auto,
            chains,
        });
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    if !node.auto {
        say!("{} {} is in the site file", node.component, version(node));
    }
    if chains.is_empty() {
        if node.auto {
            say!(
                "{} {} is in the lock, but no plugin of the site file requires it any more: the next update drops it",
                node.component,
                version(node)
            );
        }
        return Ok(Exit::Success);
    }
    say!("{} {} is required by:", node.component, version(node));
    for chain in &chains {
        let steps: Vec<String> = chain
            .windows(2)
            .map(|w| {
                let need = graph
                    .node(&w[0])
                    .and_then(|n| n.requires.as_ref())
                    .and_then(|r| r.get(&w[1]).cloned())
                    .flatten();
                match need {
                    Some(b) => format!("{} (≥ {b})", w[1]),
                    None => w[1].clone(),
                }
            })
            .collect();
        say!("  {} → {}", chain[0], steps.join(" → "));
    }
    Ok(Exit::Success)
}

#[derive(Serialize)]
struct TreeNode<'a> {
    component: &'a str,
    version: &'a str,
    release: Option<&'a str>,
    auto: bool,
    /// Component → minimum build (null: any); null when its files are not in the store.
    requires: Option<&'a std::collections::BTreeMap<String, Option<String>>>,
}

#[derive(Serialize)]
struct Tree<'a> {
    site: &'a str,
    plugins: Vec<TreeNode<'a>>,
}

pub fn tree(g: &GlobalArgs, a: &TreeArgs) -> Result<Exit, CliError> {
    let site = crate::site_file::locate(a.site.as_deref())?;
    let graph = DependencyGraph::of_site(&site, &g.store())?;
    if g.json {
        out_json(&Tree {
            site: &graph.site,
            plugins: graph
                .nodes
                .iter()
                .map(|n| TreeNode {
                    component: &n.component,
                    version: &n.version,
                    release: n.release.as_deref(),
                    auto: n.auto,
                    requires: n.requires.as_ref(),
                })
                .collect(),
        });
        return Ok(Exit::Success);
    }
    if a.dot {
        say!("{}", dot(&graph));
        return Ok(Exit::Success);
    }
    if g.quiet {
        return Ok(Exit::Success);
    }
    say!("{}", graph.site);
    for root in graph.nodes.iter().filter(|n| !n.auto) {
        branch(&graph, root, 1, &mut vec![root.component.clone()]);
    }
    let orphans: Vec<&GraphNode> = graph
        .nodes
        .iter()
        .filter(|n| n.auto && graph.why(&n.component).iter().all(|c| c.len() < 2))
        .collect();
    for n in orphans {
        say!(
            "  {} {} (auto, required by nothing)",
            n.component,
            version(n)
        );
    }
    Ok(Exit::Success)
}

/// `node` and, below it, what it requires; a plugin already on the path is shown once
/// more, marked, and not followed (a cycle).
fn branch(graph: &DependencyGraph, node: &GraphNode, depth: usize, path: &mut Vec<String>) {
    let missing = if node.requires.is_none() {
        "  (its files are not in the store: what it requires is unknown)"
    } else {
        ""
    };
    say!(
        "{}{} {}{}{missing}",
        "  ".repeat(depth),
        node.component,
        version(node),
        if node.auto { " (auto)" } else { "" }
    );
    for next in graph.needs(&node.component) {
        let Some(n) = graph.node(next) else { continue };
        if path.iter().any(|p| p == next) {
            say!("{}{next} (cycle)", "  ".repeat(depth + 1));
            continue;
        }
        path.push(next.to_string());
        branch(graph, n, depth + 1, path);
        path.pop();
    }
}

/// The graph in Graphviz's DOT language, plugins of the site file drawn bold.
fn dot(graph: &DependencyGraph) -> String {
    let mut g = petgraph::graph::DiGraph::<String, String>::new();
    let index: std::collections::BTreeMap<&str, _> = graph
        .nodes
        .iter()
        .map(|n| {
            let label = format!("{} {}", n.component, version(n));
            (n.component.as_str(), g.add_node(label))
        })
        .collect();
    for n in &graph.nodes {
        for (need, build) in n.requires.iter().flatten() {
            if let Some(to) = index.get(need.as_str()) {
                let label = build
                    .as_deref()
                    .map(|b| format!("≥ {b}"))
                    .unwrap_or_default();
                g.add_edge(index[n.component.as_str()], *to, label);
            }
        }
    }
    format!("{}", petgraph::dot::Dot::new(&g))
}
