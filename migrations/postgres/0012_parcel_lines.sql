-- Parcels: a part ships in any number of parcels, each with its lines.
-- `lines` is the parcel's content as JSON, `[["WID-1", 2], …]` (SKU and
-- quantity), always read and written with its parcel; `[]` for a parcel
-- recorded before parcels had lines, which held the whole order.
ALTER TABLE shipments ADD COLUMN lines TEXT NOT NULL DEFAULT '[]';
