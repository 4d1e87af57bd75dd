//! The peer of the benchmark: the same transcripts in a PostgreSQL table searched with
//! `LIKE '%keyword%'`, as a typical call-centre back end does.

use std::time::Instant;

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use crate::CallDoc;

/// A scratch table, created fresh and dropped when done.
pub struct PgPeer {
    conn: PgConnection,
    table: String,
}

impl PgPeer {
    pub async fn create(url: &str) -> Result<Self, sqlx::Error> {
        let mut conn = PgConnection::connect(url).await?;
        let table = format!("callqa_bench_{}", std::process::id());
        conn.execute(format!("DROP TABLE IF EXISTS {table}").as_str())
            .await?;
        conn.execute(
            format!(
                "CREATE UNLOGGED TABLE {table} (call_id text PRIMARY KEY, campaign text, \
                 agent text, started_at timestamptz, transcript text)"
            )
            .as_str(),
        )
        .await?;
        Ok(PgPeer { conn, table })
    }

    /// Bulk-loads calls with COPY, in one stream.
    pub async fn load(&mut self, calls: impl Iterator<Item = CallDoc>) -> Result<u64, sqlx::Error> {
        let statement = format!(
            "COPY {} (call_id, campaign, agent, started_at, transcript) FROM STDIN",
            self.table
        );
        let mut copy = self.conn.copy_in_raw(&statement).await?;
        let mut buf = String::with_capacity(1 << 20);
        for call in calls {
            let fields = [
                call.meta.call_id.as_str(),
                call.meta.campaign.as_deref().unwrap_or(""),
                call.meta.agent.as_deref().unwrap_or(""),
                call.meta.started_at.as_str(),
            ];
            for f in fields {
                escape_copy(f, &mut buf);
                buf.push('\t');
            }
            escape_copy(&call.transcript.full_text(), &mut buf);
            buf.push('\n');
            if buf.len() > 1 << 20 {
                copy.send(buf.as_bytes()).await?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_bytes()).await?;
        }
        let rows = copy.finish().await?;
        self.conn
            .execute(format!("ANALYZE {}", self.table).as_str())
            .await?;
        Ok(rows)
    }

    /// Counts the calls whose transcript contains `keyword` (and, when given, of
    /// `campaign` within `[from, to]` seconds); returns the count and the elapsed time.
    pub async fn count_like(
        &mut self,
        keyword: &str,
        filter: Option<(&str, i64, i64)>,
    ) -> Result<(i64, f64), sqlx::Error> {
        let pattern = format!("%{}%", keyword.replace('%', "\\%").replace('_', "\\_"));
        let start = Instant::now();
        let count: i64 = match filter {
            None => {
                sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM {} WHERE transcript LIKE $1",
                    self.table
                ))
                .bind(&pattern)
                .fetch_one(&mut self.conn)
                .await?
            }
            Some((campaign, from, to)) => {
                sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM {} WHERE transcript LIKE $1 AND campaign = $2 \
                     AND started_at BETWEEN to_timestamp($3) AND to_timestamp($4)",
                    self.table
                ))
                .bind(&pattern)
                .bind(campaign)
                .bind(from as f64)
                .bind(to as f64)
                .fetch_one(&mut self.conn)
                .await?
            }
        };
        Ok((count, start.elapsed().as_secs_f64() * 1000.0))
    }

    /// Size of the table with its TOAST data and indexes.
    pub async fn table_bytes(&mut self) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT pg_total_relation_size($1::regclass)")
            .bind(&self.table)
            .fetch_one(&mut self.conn)
            .await
    }

    pub async fn drop_table(mut self) -> Result<(), sqlx::Error> {
        self.conn
            .execute(format!("DROP TABLE IF EXISTS {}", self.table).as_str())
            .await?;
        self.conn.close().await
    }
}

/// COPY text format: backslash, tab, newline and carriage return are escaped.
fn escape_copy(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copy_escaping() {
        let mut out = String::new();
        super::escape_copy("a\tb\nc\\d 退款", &mut out);
        assert_eq!(out, "a\\tb\\nc\\\\d 退款");
    }
}
