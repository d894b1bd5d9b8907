-- A durable-sdk database of schema version 1 (first release), with one finished
-- workflow 'done-v1' (legacy.flow(1) == 4), written by durable's own code.
BEGIN TRANSACTION;
CREATE TABLE durable_meta (
	"key" VARCHAR(64) NOT NULL, 
	value VARCHAR(255) NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "durable_meta" VALUES('schema_version','1');
CREATE TABLE durable_step_attempts (
	id INTEGER NOT NULL, 
	workflow_id VARCHAR(255) NOT NULL, 
	position INTEGER NOT NULL, 
	name VARCHAR(512) NOT NULL, 
	attempt INTEGER NOT NULL, 
	started_at FLOAT NOT NULL, 
	finished_at FLOAT NOT NULL, 
	error_type VARCHAR(512) NOT NULL, 
	error_message TEXT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE durable_steps (
	id INTEGER NOT NULL, 
	workflow_id VARCHAR(255) NOT NULL, 
	position INTEGER NOT NULL, 
	name VARCHAR(512) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	output BLOB NOT NULL, 
	attempt INTEGER NOT NULL, 
	started_at FLOAT NOT NULL, 
	finished_at FLOAT NOT NULL, 
	superseded BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "durable_steps" VALUES(1,'done-v1',1,'fetch','success',X'010080054B022E',1,1795314435.23767,1.79531443523772048947e+09,0);
CREATE TABLE durable_workflows (
	workflow_id VARCHAR(255) NOT NULL, 
	name VARCHAR(512) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	args_fingerprint VARCHAR(64) NOT NULL, 
	args BLOB, 
	result BLOB, 
	error BLOB, 
	attempts INTEGER NOT NULL, 
	epoch INTEGER NOT NULL, 
	owner_host VARCHAR(255), 
	owner_pid INTEGER, 
	owner_started VARCHAR(32), 
	lease_expires_at FLOAT, 
	parent_id VARCHAR(255), 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	PRIMARY KEY (workflow_id)
);
INSERT INTO "durable_workflows" VALUES('done-v1','legacy.flow','success','bb40e2a6b5792863ae5ac6ada793eecab82672b6baca97f543abc377f256e0b6',X'01008005950A000000000000004E4B0185947D9487942E',X'010080054B042E',NULL,1,1,'vm/04e81c85-b03c-46e7-9fa3-498fd4288080/pid:[4026531836]',10221,'241445',NULL,NULL,1.79531443523600387577e+09,1.79531443523998713489e+09,1.79531443523998713489e+09);
CREATE INDEX ix_durable_workflows_name_created ON durable_workflows (name, created_at);
CREATE INDEX ix_durable_workflows_status ON durable_workflows (status);
CREATE UNIQUE INDEX ux_durable_steps_live ON durable_steps (workflow_id, position) WHERE superseded = 0;
CREATE INDEX ix_durable_step_attempts_workflow ON durable_step_attempts (workflow_id, position);
COMMIT;
