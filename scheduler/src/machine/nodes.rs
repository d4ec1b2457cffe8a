//! [`Nodes`]: a run's nodes by id, cheap to copy and knowing which of them changed.
//!
//! The run actor publishes a copy of the whole state to its watchers after every commit and
//! writes the nodes that changed to the store, so neither may cost in proportion to the
//! size of the run:
//! - the map is persistent ([`imbl::OrdMap`], a B-tree whose blocks are shared between
//!   copies) and each node sits behind an [`Arc`]: a copy is a few pointer copies, and a
//!   change copies the changed node and the blocks on its path, not the others;
//! - every way to change a node goes through [`Nodes::get_mut`], [`Nodes::insert`] or
//!   [`Nodes::update_all`], which stamp it with the next revision of the map and log it,
//!   so the store finds what changed since the revision it last wrote by reading the log
//!   ([`Nodes::changed_since`]), without looking at the other nodes. There is no other
//!   mutable access to a node: a change cannot go unrecorded.
//!
//! Revisions count within a lineage: a map created (or decoded) starts a new one, and so
//! does a copy, so that two copies changed apart can never pass one's revisions for the
//! other's. The store compares lineages and writes every node of a map it does not know.

use std::borrow::Borrow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use imbl::OrdMap;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::node::Node;

/// Lineages handed out in this process (see the module doc).
static LINEAGES: AtomicU64 = AtomicU64::new(1);

fn new_lineage() -> u64 {
    LINEAGES.fetch_add(1, Ordering::Relaxed)
}

/// A node and the revision of the map when it last changed.
#[derive(Debug, Clone)]
struct Slot {
    node: Arc<Node>,
    revision: u64,
}

/// A run's nodes by id, in id order (see the module doc).
#[derive(Debug)]
pub struct Nodes {
    map: OrdMap<String, Slot>,
    /// The id of every node by the revision of its latest change (one entry per node).
    changes: OrdMap<u64, String>,
    /// The revision of the latest change.
    revision: u64,
    /// This map's lineage (see the module doc).
    lineage: u64,
}

impl Default for Nodes {
    fn default() -> Self {
        Nodes {
            map: OrdMap::new(),
            changes: OrdMap::new(),
            revision: 0,
            lineage: new_lineage(),
        }
    }
}

/// A copy shares every node with the original; it starts a lineage of its own.
impl Clone for Nodes {
    fn clone(&self) -> Self {
        Nodes {
            map: self.map.clone(),
            changes: self.changes.clone(),
            revision: self.revision,
            lineage: new_lineage(),
        }
    }
}

impl PartialEq for Nodes {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Nodes {
    /// No nodes.
    pub fn new() -> Nodes {
        Nodes::default()
    }

    /// The node `id`.
    pub fn get(&self, id: &str) -> Option<&Node> {
        self.map.get(id).map(|slot| &*slot.node)
    }

    /// Whether there is a node `id`.
    pub fn contains_key(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// How many nodes there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no node.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The nodes with their ids, in id order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Node)> {
        self.map.iter().map(|(id, slot)| (id, &*slot.node))
    }

    /// The ids, in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> {
        self.map.keys()
    }

    /// The nodes, in id order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Node> {
        self.map.values().map(|slot| &*slot.node)
    }

    /// The node `id`, to change: it counts as changed.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Node> {
        let revision = self.revision + 1;
        let slot = self.map.get_mut(id)?;
        self.changes.remove(&slot.revision);
        slot.revision = revision;
        self.changes.insert(revision, id.to_string());
        self.revision = revision;
        Some(Arc::make_mut(&mut slot.node))
    }

    /// Add or replace the node `id`; it counts as changed.
    pub fn insert(&mut self, id: String, node: Node) {
        self.revision += 1;
        self.changes.insert(self.revision, id.clone());
        let slot = Slot {
            node: Arc::new(node),
            revision: self.revision,
        };
        if let Some(old) = self.map.insert(id, slot) {
            self.changes.remove(&old.revision);
        }
    }

    /// Keep only the nodes `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Node) -> bool) {
        let gone: Vec<String> = self
            .iter()
            .filter(|(id, node)| !keep(id, node))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            if let Some(old) = self.map.remove(&id) {
                self.changes.remove(&old.revision);
            }
        }
    }

    /// Call `change` on every node, in id order; each counts as changed.
    pub fn update_all(&mut self, mut change: impl FnMut(&mut Node)) {
        let ids: Vec<String> = self.keys().cloned().collect();
        for id in ids {
            if let Some(node) = self.get_mut(&id) {
                change(node);
            }
        }
    }

    /// This map's lineage: revisions of maps of different lineages are not comparable.
    pub(crate) fn lineage(&self) -> u64 {
        self.lineage
    }

    /// The revision of the latest change.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// The nodes changed after `revision` (each once, at its latest change), oldest change
    /// first.
    pub(crate) fn changed_since(&self, revision: u64) -> impl Iterator<Item = (&String, &Node)> {
        self.changes
            .range(revision.saturating_add(1)..)
            .filter_map(|(_, id)| self.get(id).map(|node| (id, node)))
    }
}

impl<'a> IntoIterator for &'a Nodes {
    type Item = (&'a String, &'a Node);
    type IntoIter = Box<dyn DoubleEndedIterator<Item = (&'a String, &'a Node)> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl<K: Borrow<str> + ?Sized> std::ops::Index<&K> for Nodes {
    type Output = Node;

    fn index(&self, id: &K) -> &Node {
        let id = id.borrow();
        self.get(id)
            .unwrap_or_else(|| panic!("no node {id:?} in the run"))
    }
}

impl FromIterator<(String, Node)> for Nodes {
    fn from_iter<I: IntoIterator<Item = (String, Node)>>(nodes: I) -> Self {
        let mut map = Nodes::new();
        for (id, node) in nodes {
            map.insert(id, node);
        }
        map
    }
}

/// Encoded as a map of id to node, exactly as the `BTreeMap` it replaces: stored records
/// do not change.
impl Serialize for Nodes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (id, node) in self.iter() {
            map.serialize_entry(id, node)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Nodes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NodesVisitor;
        impl<'de> Visitor<'de> for NodesVisitor {
            type Value = Nodes;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of node id to node")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Nodes, A::Error> {
                let mut nodes = Nodes::new();
                while let Some((id, node)) = access.next_entry::<String, Node>()? {
                    nodes.insert(id, node);
                }
                Ok(nodes)
            }
        }
        deserializer.deserialize_map(NodesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{NodeType, Phase};

    fn node(id: &str) -> Node {
        Node::new(id.into(), id.into(), id.into(), NodeType::Pod)
    }

    fn changed(nodes: &Nodes, since: u64) -> Vec<&str> {
        nodes
            .changed_since(since)
            .map(|(id, _)| id.as_str())
            .collect()
    }

    #[test]
    fn every_change_is_logged_once_at_its_latest_revision() {
        let mut nodes: Nodes = ["a", "b", "c"]
            .into_iter()
            .map(|id| (id.to_string(), node(id)))
            .collect();
        assert_eq!(changed(&nodes, 0), ["a", "b", "c"]);
        let written = nodes.revision();
        assert!(changed(&nodes, written).is_empty());

        nodes.get_mut("b").unwrap().phase = Phase::Running;
        nodes.insert("d".into(), node("d"));
        nodes.get_mut("b").unwrap().phase = Phase::Succeeded;
        assert!(nodes.get_mut("missing").is_none());
        assert_eq!(changed(&nodes, written), ["d", "b"]);

        let written = nodes.revision();
        nodes.update_all(|n| n.message = "x".into());
        assert_eq!(changed(&nodes, written), ["a", "b", "c", "d"]);

        nodes.retain(|id, _| id != "c");
        assert_eq!(changed(&nodes, written), ["a", "b", "d"]);
        assert_eq!(nodes.len(), 3);
    }

    #[test]
    fn a_copy_shares_nodes_until_one_side_changes_them() {
        let mut nodes: Nodes = [("a".to_string(), node("a"))].into_iter().collect();
        let copy = nodes.clone();
        assert_ne!(copy.lineage(), nodes.lineage());
        nodes.get_mut("a").unwrap().phase = Phase::Failed;
        assert_eq!(copy["a"].phase, Phase::Pending);
        assert_eq!(nodes["a"].phase, Phase::Failed);
        assert_ne!(copy, nodes);
    }

    #[test]
    fn encodes_as_the_map_it_replaced() {
        let nodes: Nodes = [("b", node("b")), ("a", node("a"))]
            .into_iter()
            .map(|(id, n)| (id.to_string(), n))
            .collect();
        let map: std::collections::BTreeMap<String, Node> = nodes
            .iter()
            .map(|(id, n)| (id.clone(), n.clone()))
            .collect();
        let bytes = crate::codec::encode("nodes", &nodes).unwrap();
        assert_eq!(bytes, crate::codec::encode("nodes", &map).unwrap());
        let back: Nodes = crate::codec::decode("nodes", &bytes).unwrap();
        assert_eq!(back, nodes);
    }
}
