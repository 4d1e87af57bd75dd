//! RabbitMQ through `lapin`: durable quorum queues per stage, persistent messages with
//! publisher confirms, manual acks, delayed retries through TTL queues, and a dead-letter
//! queue whose messages carry the failure reason in the `x-callqa-error` header.

use super::{Acker, Consumer, Delivery, Job, JobQueue, Stage};
use crate::config::QueueConfig;
use crate::error::{IngestError, Result};
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

/// A redelivery loop (a job that crashes its worker every time) ends in the DLQ after this
/// many deliveries, even though no worker lived to dead-letter it.
const DELIVERY_LIMIT: i32 = 8;

pub struct AmqpQueue {
    conn: Connection,
    publisher: Channel,
    cfg: QueueConfig,
}

fn qerr(context: impl Into<String>, e: impl std::fmt::Display) -> IngestError {
    IngestError::Queue {
        context: context.into(),
        reason: e.to_string(),
    }
}

impl AmqpQueue {
    /// Connects and declares the stage, retry and dead-letter queues.
    pub async fn connect(cfg: &QueueConfig) -> Result<AmqpQueue> {
        let url = cfg
            .url
            .clone()
            .ok_or_else(|| qerr("queue.url", "no AMQP URL configured"))?;
        let conn = Connection::connect(&url, ConnectionProperties::default())
            .await
            .map_err(|e| qerr(format!("connect to RabbitMQ at {}", redact(&url)), e))?;
        let publisher = conn
            .create_channel()
            .await
            .map_err(|e| qerr("open channel", e))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| qerr("enable publisher confirms", e))?;
        let q = AmqpQueue {
            conn,
            publisher,
            cfg: cfg.clone(),
        };
        q.declare_all().await?;
        Ok(q)
    }

    fn name(&self, stage: Stage) -> String {
        format!("{}.{}", self.cfg.prefix, stage.as_str())
    }

    fn dlq(&self) -> String {
        format!("{}.dlq", self.cfg.prefix)
    }

    async fn declare_all(&self) -> Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let ch = &self.publisher;
        ch.queue_declare(&self.dlq(), durable, FieldTable::default())
            .await
            .map_err(|e| qerr("declare dead-letter queue", e))?;
        for stage in Stage::ALL {
            let name = self.name(stage);
            let mut args = FieldTable::default();
            args.insert("x-queue-type".into(), long_str("quorum"));
            args.insert(
                "x-delivery-limit".into(),
                AMQPValue::LongInt(DELIVERY_LIMIT),
            );
            args.insert("x-dead-letter-exchange".into(), long_str(""));
            args.insert("x-dead-letter-routing-key".into(), long_str(&self.dlq()));
            if stage == Stage::Index {
                // One indexer at a time owns the index writer; others stand by.
                args.insert("x-single-active-consumer".into(), AMQPValue::Boolean(true));
            }
            ch.queue_declare(&name, durable, args)
                .await
                .map_err(|e| qerr(format!("declare {name}"), e))?;
            let mut retry_args = FieldTable::default();
            retry_args.insert("x-dead-letter-exchange".into(), long_str(""));
            retry_args.insert("x-dead-letter-routing-key".into(), long_str(&name));
            ch.queue_declare(&format!("{name}.retry"), durable, retry_args)
                .await
                .map_err(|e| qerr(format!("declare {name}.retry"), e))?;
        }
        Ok(())
    }

    /// Jobs waiting in the dead-letter queue.
    pub async fn dead_letter_depth(&self) -> Result<u64> {
        self.passive_count(&self.dlq()).await
    }

    async fn passive_count(&self, name: &str) -> Result<u64> {
        let ch = self
            .conn
            .create_channel()
            .await
            .map_err(|e| qerr("open channel", e))?;
        let q = ch
            .queue_declare(
                name,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| qerr(format!("inspect {name}"), e))?;
        let _ = ch.close(200, "done").await;
        Ok(u64::from(q.message_count()))
    }
}

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Publishes persistently and waits for the broker's confirm.
async fn publish_confirmed(
    ch: &Channel,
    routing_key: &str,
    job: &Job,
    headers: FieldTable,
    expiration_ms: Option<u64>,
) -> Result<()> {
    let payload = serde_json::to_vec(job).map_err(|e| qerr("encode job", e))?;
    let mut props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_headers(headers);
    if let Some(ms) = expiration_ms {
        props = props.with_expiration(ShortString::from(ms.max(1).to_string()));
    }
    let confirm = ch
        .basic_publish(
            "",
            routing_key,
            BasicPublishOptions::default(),
            &payload,
            props,
        )
        .await
        .map_err(|e| qerr(format!("publish to {routing_key}"), e))?
        .await
        .map_err(|e| qerr(format!("confirm from {routing_key}"), e))?;
    if confirm.is_nack() {
        return Err(qerr(
            format!("publish to {routing_key}"),
            "broker refused the message (nack)",
        ));
    }
    Ok(())
}

#[async_trait]
impl JobQueue for AmqpQueue {
    async fn publish(&self, job: &Job) -> Result<()> {
        publish_confirmed(
            &self.publisher,
            &self.name(job.stage),
            job,
            FieldTable::default(),
            None,
        )
        .await
    }

    async fn consumer(&self, stage: Stage) -> Result<Box<dyn Consumer>> {
        let ch = self
            .conn
            .create_channel()
            .await
            .map_err(|e| qerr("open channel", e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| qerr("enable publisher confirms", e))?;
        ch.basic_qos(self.cfg.prefetch.max(1), BasicQosOptions::default())
            .await
            .map_err(|e| qerr("set prefetch", e))?;
        let name = self.name(stage);
        let consumer = ch
            .basic_consume(
                &name,
                "",
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| qerr(format!("consume {name}"), e))?;
        Ok(Box::new(AmqpConsumer {
            channel: ch,
            consumer,
            queue: name,
            dlq: self.dlq(),
        }))
    }

    async fn depth(&self, stage: Stage) -> Result<u64> {
        self.passive_count(&self.name(stage)).await
    }

    fn is_embedded(&self) -> bool {
        false
    }
}

struct AmqpConsumer {
    channel: Channel,
    consumer: lapin::Consumer,
    queue: String,
    dlq: String,
}

#[async_trait]
impl Consumer for AmqpConsumer {
    async fn next(&mut self) -> Result<Delivery> {
        loop {
            let d = match self.consumer.next().await {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(qerr(format!("receive from {}", self.queue), e)),
                None => {
                    return Err(qerr(
                        format!("receive from {}", self.queue),
                        "consumer cancelled",
                    ))
                }
            };
            let mut job: Job = match serde_json::from_slice(&d.data) {
                Ok(j) => j,
                Err(e) => {
                    // Unreadable message: park it in the DLQ rather than loop on it.
                    tracing::error!(queue = %self.queue, error = %e, "malformed job message");
                    let mut h = FieldTable::default();
                    h.insert(
                        "x-callqa-error".into(),
                        long_str(&format!("malformed job: {e}")),
                    );
                    let props = BasicProperties::default()
                        .with_delivery_mode(2)
                        .with_headers(h);
                    self.channel
                        .basic_publish(
                            "",
                            &self.dlq,
                            BasicPublishOptions::default(),
                            &d.data,
                            props,
                        )
                        .await
                        .map_err(|e| qerr("publish to DLQ", e))?
                        .await
                        .map_err(|e| qerr("confirm from DLQ", e))?;
                    d.acker
                        .ack(BasicAckOptions::default())
                        .await
                        .map_err(|e| qerr("ack malformed job", e))?;
                    continue;
                }
            };
            // Quorum queues count redeliveries (a worker that died mid-job).
            if let Some(AMQPValue::LongLongInt(n)) = d
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-delivery-count").cloned())
            {
                job.attempt = job.attempt.max(u32::try_from(n).unwrap_or(0));
            }
            let acker = AmqpAcker {
                channel: self.channel.clone(),
                acker: d.acker,
                queue: self.queue.clone(),
                dlq: self.dlq.clone(),
            };
            return Ok(Delivery::new(job, Box::new(acker)));
        }
    }
}

struct AmqpAcker {
    channel: Channel,
    acker: lapin::acker::Acker,
    queue: String,
    dlq: String,
}

#[async_trait]
impl Acker for AmqpAcker {
    async fn ack(&self) -> Result<()> {
        self.acker
            .ack(BasicAckOptions::default())
            .await
            .map_err(|e| qerr(format!("ack on {}", self.queue), e))
    }

    async fn retry(&self, job: &Job, reason: &str, delay_ms: u64) -> Result<()> {
        let mut h = FieldTable::default();
        h.insert("x-callqa-last-error".into(), long_str(reason));
        // The copy is confirmed before the original is acked: a crash in between
        // duplicates the job (handlers are idempotent) but never loses it.
        publish_confirmed(
            &self.channel,
            &format!("{}.retry", self.queue),
            job,
            h,
            Some(delay_ms),
        )
        .await?;
        self.ack().await
    }

    async fn dead_letter(&self, job: &Job, reason: &str) -> Result<()> {
        let mut h = FieldTable::default();
        h.insert("x-callqa-error".into(), long_str(reason));
        h.insert("x-callqa-queue".into(), long_str(&self.queue));
        publish_confirmed(&self.channel, &self.dlq, job, h, None).await?;
        self.ack().await
    }
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}
