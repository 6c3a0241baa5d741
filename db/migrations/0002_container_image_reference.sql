ALTER TABLE "containers" DROP CONSTRAINT "containers_image_id_images_id_fk";
--> statement-breakpoint
ALTER TABLE "containers" ALTER COLUMN "image_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "containers" ADD COLUMN "image_reference" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "containers" ADD CONSTRAINT "containers_image_id_images_id_fk" FOREIGN KEY ("image_id") REFERENCES "public"."images"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
UPDATE "containers" SET "image_reference" = "images"."reference" FROM "images" WHERE "images"."id" = "containers"."image_id";
