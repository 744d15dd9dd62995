//! The checks a chosen set of plugins must pass before anything is committed: component
//! names, core plugins, plugin types and install paths, `requires`, `incompatible`,
//! dependencies (present, new enough, acyclic), with `supported` as a warning.

use std::collections::BTreeMap;

use mcb_moodle::{Build, Component, CoreLayout, CoreVersion, PluginVersion};
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::DiGraph;

use crate::candidates::{Fit, fit};
use crate::problem::{Problem, Rule, Warning};

/// A plugin version chosen for the site.
#[derive(Debug, Clone)]
pub struct SelectedPlugin {
    /// The site file's key (or the dependency's name for an automatic addition).
    pub component: Component,
    pub info: PluginVersion,
    /// Added as a dependency rather than listed by the site file.
    pub auto: bool,
}

/// What a site that passes the checks looks like.
#[derive(Debug, Clone, Default)]
pub struct SiteCheck {
    /// Component → install path relative to the codebase root.
    pub paths: BTreeMap<String, String>,
    /// Dependencies before their dependants.
    pub order: Vec<String>,
    pub warnings: Vec<Warning>,
}

fn who(p: &SelectedPlugin) -> String {
    match p.info.version {
        Some(v) => format!("{} {v}", p.component),
        None => p.component.to_string(),
    }
}

/// Checks every rule; returns all problems found, not just the first.
/// `core_plugin_version` gives the version of a plugin that ships with core, when known.
pub fn check_site(
    core: &CoreVersion,
    layout: &CoreLayout,
    plugins: &[SelectedPlugin],
    core_plugin_version: &dyn Fn(&str) -> Option<Build>,
) -> Result<SiteCheck, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = SiteCheck::default();
    let by_name: BTreeMap<&str, &SelectedPlugin> =
        plugins.iter().map(|p| (p.component.as_str(), p)).collect();
    let mut path_owner: BTreeMap<String, &str> = BTreeMap::new();
    for p in plugins {
        let name = p.component.as_str();
        if let Some(problem) = component_problem(p) {
            problems.push(problem);
        }
        if layout.is_standard(name) {
            problems.push(
                Problem::new(
                    name,
                    Rule::ShipsWithCore,
                    format!(
                        "{name} is part of Moodle {} (lib/plugins.json)",
                        core.major_release()
                    ),
                )
                .hint("remove it from the site file: core provides it"),
            );
            continue;
        }
        match layout.install_path(&p.component) {
            Ok(path) => {
                if let Some(other) = path_owner.get(&path) {
                    problems.push(Problem::new(
                        name,
                        Rule::PathClash,
                        format!("{name} and {other} both install to {path}"),
                    ));
                } else {
                    path_owner.insert(path.clone(), name);
                    out.paths.insert(name.to_string(), path);
                }
            }
            Err(e) => problems.push(
                Problem::new(name, Rule::UnknownType, e.to_string())
                    .hint("check the spelling of the component, or add the plugin that declares this subplugin type"),
            ),
        }
        match fit(core, &p.info, &who(p)) {
            Fit::Fits => {}
            Fit::OutsideSupported(w) => out.warnings.push(Warning {
                component: name.to_string(),
                message: w,
            }),
            Fit::Blocked(rule, why) => problems.push(Problem::new(name, rule, why)),
        }
        problems.extend(dependency_problems(
            p,
            &by_name,
            core,
            layout,
            core_plugin_version,
        ));
    }
    match install_order(plugins) {
        Ok(order) => out.order = order,
        Err(cycles) => problems.extend(cycles),
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// The plugin's `$plugin->component` against the name the site gives it.
fn component_problem(p: &SelectedPlugin) -> Option<Problem> {
    let name = p.component.as_str();
    match p.info.component.as_deref() {
        Some(c) if c == name => None,
        Some(c) => Some(
            Problem::new(
                name,
                Rule::ComponentMismatch,
                format!("its version.php says $plugin->component = '{c}'"),
            )
            .hint(format!(
                "the source holds {c}, not {name}: fix the key in the site file or the source"
            )),
        ),
        None => Some(Problem::new(
            name,
            Rule::ComponentMismatch,
            "its version.php does not set $plugin->component",
        )),
    }
}

/// Each dependency of `p`: on the site or shipped with core, and new enough.
fn dependency_problems(
    p: &SelectedPlugin,
    by_name: &BTreeMap<&str, &SelectedPlugin>,
    core: &CoreVersion,
    layout: &CoreLayout,
    core_plugin_version: &dyn Fn(&str) -> Option<Build>,
) -> Vec<Problem> {
    let name = p.component.as_str();
    let mut problems = Vec::new();
    for (dep, min) in &p.info.dependencies {
        let need = match min {
            Some(v) => format!("{dep} {v} or later"),
            None => format!("{dep} (any version)"),
        };
        // Where the dependency comes from, the version there, and how to say so.
        let present = if let Some(d) = by_name.get(dep.as_str()) {
            Some((d.info.version, "the site has".to_string()))
        } else if layout.is_standard(dep) {
            Some((
                core_plugin_version(dep),
                format!("Moodle {} ships", core.release),
            ))
        } else {
            None
        };
        match present {
            Some((Some(have), source)) if min.is_some_and(|min| have < min) => problems.push(
                Problem::new(
                    name,
                    Rule::DependencyTooOld,
                    format!("{} requires {need}", who(p)),
                )
                .fact(format!("{source} {dep} {have}")),
            ),
            Some(_) => {}
            None => problems.push(
                Problem::new(
                    name,
                    Rule::MissingDependency,
                    format!("{} requires {need}", who(p)),
                )
                .fact(format!("{dep} is not in the site file"))
                .hint(format!("add \"{dep}\" to the plugins of the site file")),
            ),
        }
    }
    problems
}

/// Install order: dependencies first; a cycle is reported whole.
fn install_order(plugins: &[SelectedPlugin]) -> Result<Vec<String>, Vec<Problem>> {
    let mut graph = DiGraph::<&str, ()>::new();
    let nodes: BTreeMap<&str, _> = plugins
        .iter()
        .map(|p| (p.component.as_str(), graph.add_node(p.component.as_str())))
        .collect();
    for p in plugins {
        for dep in p.info.dependencies.keys() {
            if let Some(&d) = nodes.get(dep.as_str()) {
                graph.add_edge(d, nodes[p.component.as_str()], ());
            }
        }
    }
    if let Ok(order) = toposort(&graph, None) {
        return Ok(order.into_iter().map(|n| graph[n].to_string()).collect());
    }
    let mut problems = Vec::new();
    for scc in tarjan_scc(&graph) {
        let cyclic = scc.len() > 1 || scc.iter().any(|&n| graph.contains_edge(n, n));
        if !cyclic {
            continue;
        }
        let mut names: Vec<&str> = scc.iter().map(|&n| graph[n]).collect();
        names.sort();
        let chain = names
            .iter()
            .chain(names.first())
            .copied()
            .collect::<Vec<_>>()
            .join(" → ");
        problems.push(
            Problem::new(names[0], Rule::DependencyCycle, format!("these plugins depend on each other in a cycle: {chain}"))
                .hint("Moodle cannot install a dependency cycle; one of these plugins must drop its dependency"),
        );
    }
    Err(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcb_moodle::Branch;

    const COMPONENTS: &str =
        r#"{"plugintypes": {"mod": "mod", "block": "blocks", "local": "local"}}"#;
    const PLUGINS: &str = r#"{"standard": {"mod": ["quiz"]}}"#;

    fn core() -> CoreVersion {
        CoreVersion {
            build: Build::parse("2024100701").unwrap(),
            release: "4.5.1".into(),
            branch: Branch(405),
            maturity: None,
        }
    }

    fn plugin(name: &str, version: i64, deps: &[(&str, Option<i64>)]) -> SelectedPlugin {
        SelectedPlugin {
            component: Component::parse(name).unwrap(),
            info: PluginVersion {
                component: Some(name.into()),
                version: Some(Build::from_int(version)),
                requires: Some(Build::from_int(2024100700)),
                dependencies: deps
                    .iter()
                    .map(|(d, v)| (d.to_string(), v.map(Build::from_int)))
                    .collect(),
                ..Default::default()
            },
            auto: false,
        }
    }

    fn run(plugins: &[SelectedPlugin]) -> Result<SiteCheck, Vec<Problem>> {
        let layout = CoreLayout::new(COMPONENTS, Some(PLUGINS), false).unwrap();
        check_site(&core(), &layout, plugins, &|c| {
            (c == "mod_quiz").then(|| Build::from_int(2024100700))
        })
    }

    fn rules(r: Result<SiteCheck, Vec<Problem>>) -> Vec<Rule> {
        r.unwrap_err().into_iter().map(|p| p.rule).collect()
    }

    #[test]
    fn a_good_site_gives_paths_and_order() {
        let ok = run(&[
            plugin("mod_a", 2, &[("local_b", Some(1)), ("mod_quiz", None)]),
            plugin("local_b", 1, &[]),
        ])
        .unwrap();
        assert_eq!(ok.paths["mod_a"], "mod/a");
        assert_eq!(ok.order, vec!["local_b", "mod_a"]);
    }

    #[test]
    fn every_rule() {
        assert_eq!(
            rules(run(&[plugin("mod_a", 2, &[("local_b", None)])])),
            vec![Rule::MissingDependency]
        );
        assert_eq!(
            rules(run(&[
                plugin("mod_a", 2, &[("local_b", Some(5))]),
                plugin("local_b", 1, &[])
            ])),
            vec![Rule::DependencyTooOld]
        );
        assert_eq!(
            rules(run(&[plugin(
                "mod_a",
                2,
                &[("mod_quiz", Some(2025010100))]
            )])),
            vec![Rule::DependencyTooOld]
        );
        assert_eq!(
            rules(run(&[plugin("mod_quiz", 2, &[])])),
            vec![Rule::ShipsWithCore]
        );
        assert_eq!(
            rules(run(&[plugin("foo_a", 2, &[])])),
            vec![Rule::UnknownType]
        );
        let mut wrong = plugin("mod_a", 2, &[]);
        wrong.info.component = Some("mod_b".into());
        assert_eq!(rules(run(&[wrong])), vec![Rule::ComponentMismatch]);
        let mut late = plugin("mod_a", 2, &[]);
        late.info.requires = Some(Build::from_int(2025041400));
        assert_eq!(rules(run(&[late])), vec![Rule::Requires]);
        let mut inc = plugin("mod_a", 2, &[]);
        inc.info.incompatible = Some(Branch(405));
        assert_eq!(rules(run(&[inc])), vec![Rule::Incompatible]);
        let cyc = run(&[
            plugin("mod_a", 2, &[("local_b", None)]),
            plugin("local_b", 1, &[("mod_a", None)]),
        ])
        .unwrap_err();
        assert_eq!(cyc.len(), 1);
        assert!(
            cyc[0].to_string().contains("local_b → mod_a → local_b"),
            "{}",
            cyc[0]
        );
    }

    #[test]
    fn outside_supported_is_a_warning() {
        let mut p = plugin("mod_a", 2, &[]);
        p.info.supported = Some((Branch(401), Branch(404)));
        let ok = run(&[p]).unwrap();
        assert_eq!(ok.warnings.len(), 1);
    }
}
