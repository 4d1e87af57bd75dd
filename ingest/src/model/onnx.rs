//! Just enough of the ONNX file format (protocol buffers) to read a small model's weights:
//! the graph's initializers (named float tensors) and its nodes' operator types and inputs.

use std::collections::HashMap;

/// A float tensor stored in the graph, with its dimensions as declared (outermost first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub dims: Vec<usize>,
    pub data: Vec<f32>,
}

/// A graph node: its operator and the names of its inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub op_type: String,
    pub inputs: Vec<String>,
}

/// The parts of an ONNX model the importers use.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    /// Float initializers by name (initializers of other types are skipped).
    pub tensors: HashMap<String, Tensor>,
    pub nodes: Vec<Node>,
}

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: u64 = 1;

/// Parses a serialized `ModelProto`. Errors say what was malformed.
pub(crate) fn parse_model(buf: &[u8]) -> Result<Graph, String> {
    let mut graph = Graph::default();
    let mut found = false;
    for field in Fields::new(buf) {
        let (num, value) = field?;
        // ModelProto.graph = 7
        if num == 7 {
            let Value::Bytes(g) = value else {
                return Err("graph is not a message".into());
            };
            parse_graph(g, &mut graph)?;
            found = true;
        }
    }
    if !found {
        return Err("no graph in the file (is it an ONNX model?)".into());
    }
    Ok(graph)
}

fn parse_graph(buf: &[u8], graph: &mut Graph) -> Result<(), String> {
    for field in Fields::new(buf) {
        match field? {
            // GraphProto.node = 1
            (1, Value::Bytes(b)) => graph.nodes.push(parse_node(b)?),
            // GraphProto.initializer = 5
            (5, Value::Bytes(b)) => {
                if let Some((name, t)) = parse_tensor(b)? {
                    graph.tensors.insert(name, t);
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn parse_node(buf: &[u8]) -> Result<Node, String> {
    let mut node = Node {
        op_type: String::new(),
        inputs: Vec::new(),
    };
    for field in Fields::new(buf) {
        match field? {
            // NodeProto.input = 1, op_type = 4
            (1, Value::Bytes(b)) => node.inputs.push(utf8(b)?),
            (4, Value::Bytes(b)) => node.op_type = utf8(b)?,
            _ => {}
        }
    }
    Ok(node)
}

/// A float initializer as (name, tensor); `None` for other element types.
fn parse_tensor(buf: &[u8]) -> Result<Option<(String, Tensor)>, String> {
    let mut dims = Vec::new();
    let mut data_type = 0;
    let mut name = String::new();
    let mut raw: Option<&[u8]> = None;
    let mut floats: Vec<f32> = Vec::new();
    for field in Fields::new(buf) {
        match field? {
            // TensorProto.dims = 1 (packed or not)
            (1, Value::Varint(v)) => dims.push(v as usize),
            (1, Value::Bytes(b)) => {
                let mut r = Reader { buf: b, pos: 0 };
                while r.pos < b.len() {
                    dims.push(r.varint()? as usize);
                }
            }
            // data_type = 2
            (2, Value::Varint(v)) => data_type = v,
            // float_data = 4 (packed)
            (4, Value::Bytes(b)) => floats.extend(le_floats(b)?),
            (4, Value::Fixed32(v)) => floats.push(f32::from_bits(v)),
            // name = 8, raw_data = 9
            (8, Value::Bytes(b)) => name = utf8(b)?,
            (9, Value::Bytes(b)) => raw = Some(b),
            _ => {}
        }
    }
    if data_type != FLOAT {
        return Ok(None);
    }
    let data = match raw {
        Some(b) => le_floats(b)?,
        None => floats,
    };
    let n = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if n != Some(data.len()) {
        return Err(format!(
            "tensor `{name}`: {} values for dimensions {dims:?}{}",
            data.len(),
            if data.is_empty() {
                " (weights stored outside the file are not supported)"
            } else {
                ""
            }
        ));
    }
    Ok(Some((name, Tensor { dims, data })))
}

fn le_floats(b: &[u8]) -> Result<Vec<f32>, String> {
    if !b.len().is_multiple_of(4) {
        return Err(format!("{} bytes of float data", b.len()));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

fn utf8(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|_| "a name is not UTF-8".to_string())
}

/// A protocol-buffer field's value by wire type.
enum Value<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32(u32),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let &b = self.buf.get(self.pos).ok_or("cut short inside a number")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number longer than 10 bytes".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("cut short inside a field")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
}

/// The fields of one message, in file order.
struct Fields<'a> {
    r: Reader<'a>,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Fields {
            r: Reader { buf, pos: 0 },
            failed: false,
        }
    }

    fn next_field(&mut self) -> Result<(u64, Value<'a>), String> {
        let key = self.r.varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.r.varint()?),
            1 => {
                self.r.take(8)?;
                Value::Fixed64
            }
            2 => {
                let n = usize::try_from(self.r.varint()?).map_err(|_| "field too long")?;
                Value::Bytes(self.r.take(n)?)
            }
            5 => {
                let b = self.r.take(4)?;
                Value::Fixed32(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            }
            t => return Err(format!("unknown wire type {t}")),
        };
        Ok((key >> 3, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.r.pos >= self.r.buf.len() {
            return None;
        }
        let item = self.next_field();
        self.failed = item.is_err();
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(num: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(num << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    fn tensor(name: &str, dims: &[u64], values: &[f32], data_type: u64) -> Vec<u8> {
        let mut t = Vec::new();
        for &d in dims {
            varint(1 << 3, &mut t);
            varint(d, &mut t);
        }
        varint(2 << 3, &mut t);
        varint(data_type, &mut t);
        bytes_field(8, name.as_bytes(), &mut t);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        bytes_field(9, &raw, &mut t);
        t
    }

    fn model(graph: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        // ir_version = 1 (a varint field the reader skips)
        varint(1 << 3, &mut m);
        varint(8, &mut m);
        bytes_field(7, graph, &mut m);
        m
    }

    #[test]
    fn reads_float_initializers_and_nodes() {
        let mut g = Vec::new();
        bytes_field(
            5,
            &tensor("w", &[2, 3], &[1., 2., 3., 4., 5., 6.], 1),
            &mut g,
        );
        bytes_field(5, &tensor("shape", &[2], &[0., 0.], 7), &mut g);
        let mut node = Vec::new();
        bytes_field(1, b"x", &mut node);
        bytes_field(1, b"w", &mut node);
        bytes_field(4, b"MatMul", &mut node);
        bytes_field(1, &node, &mut g);
        let graph = parse_model(&model(&g)).unwrap();
        assert_eq!(
            graph.tensors["w"],
            Tensor {
                dims: vec![2, 3],
                data: vec![1., 2., 3., 4., 5., 6.]
            }
        );
        assert!(!graph.tensors.contains_key("shape"), "int64 skipped");
        assert_eq!(graph.nodes[0].op_type, "MatMul");
        assert_eq!(graph.nodes[0].inputs, ["x", "w"]);
    }

    #[test]
    fn a_cut_or_foreign_file_is_an_error() {
        let mut g = Vec::new();
        bytes_field(5, &tensor("w", &[4], &[1., 2., 3., 4.], 1), &mut g);
        let m = model(&g);
        for cut in [m.len() - 1, m.len() / 2, 3] {
            assert!(parse_model(&m[..cut]).is_err(), "cut at {cut}");
        }
        assert!(parse_model(b"RIFF\x00\x00\x00\x00WAVE").is_err());
        let mut short = Vec::new();
        bytes_field(5, &tensor("w", &[5], &[1., 2., 3., 4.], 1), &mut short);
        let err = parse_model(&model(&short)).unwrap_err();
        assert!(err.contains("`w`: 4 values"), "{err}");
    }
}
