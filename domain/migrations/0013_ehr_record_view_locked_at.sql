-- The view also says when each record locks, so PostgreSQL can build the API's JSON whole.
CREATE OR REPLACE VIEW ehr_record_view AS
SELECT r.id, r.pet_id, r.kind, r.data, r.author_id, r.content_sha256, r.created_at, r.updated_at,
       COALESCE((SELECT json_agg(json_build_object(
                            'id', a.id, 'author_id', a.author_id, 'reason', a.reason,
                            'data', a.data, 'content_sha256', a.content_sha256,
                            'created_at', a.created_at) ORDER BY a.created_at, a.id)
                   FROM ehr_amendments a WHERE a.record_id = r.id), '[]'::json) AS amendments,
       r.created_at + interval '24 hours' AS locked_at
  FROM ehr_records r;
