-- The state of each document's text (app.Document.TextStatus): '' until the
-- outbox extracts it (read as pending), then indexed, no_text or failed with
-- a reason. Documents stored before this migration are unknown.
ALTER TABLE documents ADD COLUMN text_status text NOT NULL DEFAULT '';
ALTER TABLE documents ADD COLUMN text_reason text NOT NULL DEFAULT '';
UPDATE documents SET text_status = 'unknown';
