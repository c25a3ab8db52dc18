-- A two-bus zone with the measurement points, equipment mapping and weather
-- locations the ingest fixtures in this directory refer to.
INSERT INTO zone (zone_id, base_mva) VALUES ('z1', 100);
INSERT INTO bus (zone_id, bus_i, row_no, bus_type, pd, qd, gs, bs, area, vm, va, base_kv, loss_zone, vmax, vmin)
  VALUES ('z1', 1, 1, 3, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9), ('z1', 2, 2, 1, 0, 0, 0, 0, 1, 1, 0, 33, 1, 1.1, 0.9);
INSERT INTO branch (zone_id, idx, name, f_bus, t_bus, r, x, b, rate_a, rate_b, rate_c, tap, shift, status)
  VALUES ('z1', 1, 'BRIG-NINF-1', 1, 2, 0.01, 0.1, 0, 100, 100, 100, 0, 0, 1),
         ('z1', 2, 'NINF-GT1', 1, 2, 0.01, 0.1, 0, 100, 100, 100, 0, 0, 1);
INSERT INTO measurement_point (point_id, zone_id, quantity, element, branch_id, branch_end, scale)
  SELECT p, 'z1', q, 'branch', branch_id, 'from', 1 FROM branch,
    (VALUES ('GT1_P', 'p_mw'), ('brighton_local_33kv_gt2/active_power_mw', 'p_mw'),
            ('brighton_local_33kv_gt2/current_amps', 'i_a'), ('ninfield_132kv_sgt1/active_power_mw', 'p_mw'),
            ('ninfield_132kv_sgt1/current_amps', 'i_a')) v(p, q) WHERE idx = 1;
INSERT INTO measurement_point (point_id, zone_id, quantity, element, bus_i, scale)
  VALUES ('BUS1_V', 'z1', 'v_kv', 'bus', 1, 1), ('P_KW', 'z1', 'p_mw', 'bus', 2, 0.001);
INSERT INTO equipment_branch SELECT name, branch_id FROM branch;
INSERT INTO weather_location (location_id, zone_id, latitude, longitude) VALUES
  ('london', 'z1', 51.5, -0.12), ('ams', NULL, 52.3, 6.9), ('ams2', NULL, 52.5, 6.9);
