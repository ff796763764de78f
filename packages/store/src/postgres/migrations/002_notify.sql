-- Cross-replica wake-ups: coordinators sharing this database LISTEN on these channels.
-- havn_jobs: work may be waiting (a job was queued or re-queued). Payloads are identical, so
-- PostgreSQL folds the notifications of one transaction into one.
-- havn_job_ended: a job reached a terminal status; the payload is its id.
CREATE FUNCTION havn_notify_job_change() RETURNS trigger AS $$
BEGIN
  IF NEW.status = 'queued' THEN
    PERFORM pg_notify('havn_jobs', 'queued');
  ELSIF NEW.status IN ('completed', 'failed', 'cancelled') THEN
    PERFORM pg_notify('havn_job_ended', NEW.id);
  END IF;
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER jobs_notify_insert AFTER INSERT ON jobs
  FOR EACH ROW EXECUTE FUNCTION havn_notify_job_change();
CREATE TRIGGER jobs_notify_update AFTER UPDATE OF status ON jobs
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION havn_notify_job_change();
