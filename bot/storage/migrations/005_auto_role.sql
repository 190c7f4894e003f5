-- Only members with this role are analysed automatically (NULL: everyone).
ALTER TABLE guild_settings ADD COLUMN auto_role_id BIGINT;
